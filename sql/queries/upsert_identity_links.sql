-- Records anonymous_id -> user_id links; an earlier link replaces a later one.
-- Reads the registered Arrow table staged_links (anonymous_id, user_id, linked_at), one row per anonymous_id.
insert into identity_links
select anonymous_id, user_id, linked_at from staged_links
on conflict (anonymous_id) do update
    set user_id = excluded.user_id, linked_at = excluded.linked_at
    where excluded.linked_at < identity_links.linked_at
