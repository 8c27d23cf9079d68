-- The identity link in force per anonymous_id, the one definition every report read joins
-- (as DuckDB's resolve_identity macro is): the earliest link, a tie to the one recorded first
-- (sql/clickhouse/schema/003_create_identity_links.sql). linked_user_id is Nullable, so a left
-- join leaves an unlinked anonymous_id's null rather than '' (without join_use_nulls, which
-- would change every other join).
create view if not exists identity_links_in_force as
select anonymous_id, toNullable(argMin(user_id, (linked_at, recorded_at))) as linked_user_id
from identity_links
group by anonymous_id
