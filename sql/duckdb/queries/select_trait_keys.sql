-- The traits worth a segment breakdown (for the segment chooser): names users carry whose
-- values are few (at most 50 distinct, so email or ids are left out), most common first.
-- Returns trait.
with pairs as (
    select unnest(json_keys(traits)) as trait, traits
    from events
    where traits is not null
),

trait_values as (
    select
        trait,
        json_extract_string(traits, '/' || replace(replace(trait, '~', '~0'), '/', '~1')) as value
    from pairs
)

select trait
from trait_values
group by trait
having count(distinct value) <= 50
order by count(*) desc, trait
limit 50
