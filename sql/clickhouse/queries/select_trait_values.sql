-- The most common values of the trait {trait} on events, for the launch editor's suggestions.
-- Parameters: {trait}. Returns value, users (distinct users carrying it; at most 50 rows).
-- Values are read as in select_launch_signals.sql (json_text), the trait by its name.
with
    (doc, key) -> JSONExtract(doc, key, 'Nullable(String)') as json_value,
    (doc, key) -> if(
        match(json_value(doc, key), '^-?[0-9]+$') and JSONType(doc, key) = 'Double',
        concat(json_value(doc, key), '.0'),
        json_value(doc, key)
    ) as json_text,

carried as (
    select
        coalesce(user_id, anonymous_id) as user_key,
        json_text(traits, {trait:String}) as trait_value
    from events final
    where traits is not null
)

select trait_value as value, count(distinct user_key) as users
from carried
where trait_value is not null
group by trait_value
order by users desc, value
limit 50
