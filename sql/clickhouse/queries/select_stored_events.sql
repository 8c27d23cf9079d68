-- The group commit's key lookup: which of {message_ids} of {source} are already stored, so the
-- reply counts them as duplicates and they are not inserted again. Any stored copy counts, so
-- no FINAL; the sort key (source, message_id) makes this a primary-key range read.
select distinct message_id
from events
where source = {source:String} and message_id in {message_ids:Array(String)}
