-- How many distinct events are stored: FINAL collapses the copies of one (source, message_id)
-- that a merge has not collapsed yet, so a duplicate is never counted.
select count() from events final
