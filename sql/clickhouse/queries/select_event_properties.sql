-- The property names events named {event} carried in [{start}, {end}), with their most common
-- values, for the launch editor's suggestions. Parameters: {event}, {start}, {end}.
-- Returns property, value, events (most common first; at most 500 rows). Values are read as
-- in select_launch_signals.sql (json_text: null for a JSON null, DuckDB's text otherwise).
with
    (doc, key) -> JSONExtract(doc, key, 'Nullable(String)') as json_value,
    (doc, key) -> if(
        match(json_value(doc, key), '^-?[0-9]+$') and JSONType(doc, key) = 'Double',
        concat(json_value(doc, key), '.0'),
        json_value(doc, key)
    ) as json_text,

recent as (
    select properties
    from events final
    where event = {event:String}
        and occurred_at >= {start:DateTime64(6, 'UTC')} and occurred_at < {end:DateTime64(6, 'UTC')}
        and properties is not null
    limit 20000
),

property_values as (
    select property, json_text(properties, property) as value
    from recent
    array join JSONExtractKeys(assumeNotNull(properties)) as property
)

select property, value, count() as events
from property_values
group by property, value
order by events desc, property, value
limit 500
