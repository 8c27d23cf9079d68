-- The property names events named $event carried in [$start, $end), with their most common
-- values, for the launch editor's suggestions. Parameters: $event, $start, $end.
-- Returns property, value, events (most common first; at most 500 rows).
with recent as (
    select properties
    from events
    where event = $event and occurred_at >= $start and occurred_at < $end and properties is not null
    limit 20000
),

pairs as (
    select unnest(json_keys(properties)) as property, properties
    from recent
),

property_values as (
    select
        property,
        json_extract_string(properties, '/' || replace(replace(property, '~', '~0'), '/', '~1')) as value
    from pairs
)

select property, value, count(*) as events
from property_values
group by property, value
order by events desc, property, value
limit 500
