-- Every value of the named traits seen before $end, per canonical user, from identify traits,
-- context.traits and PostHog $set (all stored in events.traits).
-- Parameters: $end; $trait_names and $trait_pointers (same order).
-- Returns user_id (canonical), occurred_at, trait, value (text).
with carrying as (
    select user_id, anonymous_id, occurred_at, traits
    from events
    where traits is not null and occurred_at < $end
),

resolved as (
    select
        coalesce(carrying.user_id, links.user_id, 'anon:' || carrying.anonymous_id) as user_id,
        carrying.occurred_at,
        json_extract_string(carrying.traits, $trait_pointers) as trait_values
    from carrying
    left join identity_links as links
        on carrying.user_id is null and links.anonymous_id = carrying.anonymous_id
),

long as (
    select user_id, occurred_at, unnest($trait_names) as trait, unnest(trait_values) as value
    from resolved
)

select user_id, occurred_at, trait, value
from long
where value is not null
