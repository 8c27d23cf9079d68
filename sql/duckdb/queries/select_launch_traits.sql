-- Every value of the named traits seen before $end, per canonical user (resolve_identity,
-- sql/schema), from identify traits, context.traits and PostHog $set (all stored in
-- events.traits).
-- Parameters: $end; $trait_names and $trait_pointers (same order).
-- Returns user_id (canonical), occurred_at, trait, value (text).
with carrying as (
    select user_id, anonymous_id, occurred_at, traits
    from events
    where traits is not null and occurred_at < $end
),

long as (
    select
        user_id,
        occurred_at,
        unnest($trait_names) as trait,
        unnest(json_extract_string(traits, $trait_pointers)) as value
    from resolve_identity(carrying)
)

select user_id, occurred_at, trait, value
from long
where value is not null
