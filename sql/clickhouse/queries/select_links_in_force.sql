-- The earliest link time already stored for each of {anonymous_ids}: the writer appends a link
-- only when it is earlier than this (the link in force is the earliest; see
-- sql/clickhouse/schema/003_create_identity_links.sql).
select anonymous_id, min(linked_at) as linked_at
from identity_links
where anonymous_id in {anonymous_ids:Array(String)}
group by anonymous_id
