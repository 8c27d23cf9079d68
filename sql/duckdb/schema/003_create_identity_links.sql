-- anonymous_id -> user_id links, from events carrying both and from alias (previous_id).
-- The earliest link of an anonymous_id wins; linked_at is the linking event's time.
create table if not exists identity_links (
    anonymous_id varchar primary key,
    user_id varchar not null,
    linked_at timestamp not null
)
