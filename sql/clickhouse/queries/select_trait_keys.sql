-- The traits worth a segment breakdown (for the segment chooser): names users carry whose
-- values are few (at most 50 distinct, so email or ids are left out), most common first.
-- Returns trait. Values are read as in select_launch_signals.sql (json_text).
with
    (doc, key) -> JSONExtract(doc, key, 'Nullable(String)') as json_value,
    (doc, key) -> if(
        match(json_value(doc, key), '^-?[0-9]+$') and JSONType(doc, key) = 'Double',
        concat(json_value(doc, key), '.0'),
        json_value(doc, key)
    ) as json_text,

trait_values as (
    select trait, json_text(traits, trait) as trait_value
    from events final
    array join JSONExtractKeys(assumeNotNull(traits)) as trait
    where traits is not null
)

select trait
from trait_values
group by trait
having count(distinct trait_value) <= 50
order by count() desc, trait
limit 50
