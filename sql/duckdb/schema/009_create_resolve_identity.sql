-- Identity resolution, the one definition every report read uses: each row of `rows` (a table
-- or CTE name; its columns must include user_id and anonymous_id) comes back with user_id
-- replaced by the canonical user, and with is_identified. The canonical user is the row's
-- userId, else the userId its anonymousId is linked to (identity_links), else
-- 'anon:' || anonymousId; is_identified is true unless the last applies. Only rows without a
-- userId look up a link. A macro rather than a view, so a caller can group its events first
-- and resolve only the groups (select_launch_activity.sql does, for speed). An existing
-- database keeps the definition it was created with: a changed definition needs a new
-- schema file that drops and recreates it.
create macro if not exists resolve_identity(rows) as table
select
    coalesce(own.user_id, links.user_id, 'anon:' || own.anonymous_id) as user_id,
    coalesce(own.user_id, links.user_id) is not null as is_identified,
    own.* exclude (user_id)
from query_table(rows) as own
left join identity_links as links
    on own.user_id is null and links.anonymous_id = own.anonymous_id
