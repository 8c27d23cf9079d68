-- Backup: the link in force per anonymous_id (the earliest; a tie to the one recorded first),
-- with exactly the columns of the DuckDB identity_links table, in its order.
select anonymous_id, link.1 as user_id, link.2 as linked_at
from (
    select anonymous_id, argMin((user_id, linked_at), (linked_at, recorded_at)) as link
    from identity_links
    group by anonymous_id
)
