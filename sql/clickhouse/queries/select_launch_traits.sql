-- Every value of the named traits seen before {end}, per canonical user (identity resolved as
-- in select_launch_activity.sql), from identify traits, context.traits and PostHog $set (all
-- stored in events.traits).
-- Parameters: {end}; {trait_names} and {trait_pointers} (same order).
-- Returns user_id (canonical), occurred_at, trait, value (text; json_text as in
-- select_launch_signals.sql: null for a missing value or a JSON null, and left out).
with
    (pointer) -> replaceAll(replaceAll(substring(pointer, 2), '~1', '/'), '~0', '~') as pointer_key,
    (doc, key) -> JSONExtract(doc, key, 'Nullable(String)') as json_value,
    (doc, key) -> if(
        match(json_value(doc, key), '^-?[0-9]+$') and JSONType(doc, key) = 'Double',
        concat(json_value(doc, key), '.0'),
        json_value(doc, key)
    ) as json_text,

carrying as (
    select user_id, anonymous_id, occurred_at, traits
    from events final
    where traits is not null and occurred_at < {end:DateTime64(6, 'UTC')}
),

resolved as (
    select
        coalesce(own.user_id, links.linked_user_id, concat('anon:', own.anonymous_id)) as canonical_id,
        own.occurred_at as event_at,
        arrayZip(
            {trait_names:Array(String)},
            arrayMap(pointer -> json_text(own.traits, pointer_key(pointer)), {trait_pointers:Array(String)})
        ) as pairs
    from carrying as own
    left join identity_links_in_force as links on links.anonymous_id = own.anonymous_id
)

select canonical_id as user_id, event_at as occurred_at, pair.1 as trait, pair.2 as value
from resolved
array join pairs as pair
where value is not null
