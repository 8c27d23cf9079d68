-- The most common values of the trait $trait on events, for the launch editor's suggestions.
-- Parameters: $trait. Returns value, users (distinct users carrying it; at most 50 rows).
with carried as (
    select
        coalesce(user_id, anonymous_id) as user_key,
        json_extract_string(traits, '/' || replace(replace($trait, '~', '~0'), '/', '~1')) as value
    from events
    where traits is not null
)

select value, count(distinct user_key) as users
from carried
where value is not null
group by value
order by users desc, value
limit 50
