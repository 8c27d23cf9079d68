-- The events that may be a launch's signals in [{start}, {end}), identity resolved as in
-- select_launch_activity.sql, with the property values its matchers test (the pipeline applies
-- the matchers exactly).
-- Parameters: {start}, {end}; {event_names} (names any matcher names); {any_types} (types of
-- matchers without a name); {pointers} (JSON pointers of the matchers' properties, in order);
-- {channel_pointer} (the launch's channel property); {identified_only} (leave out users whose
-- events never carry or link to a userId).
-- Returns user_id, is_identified, type, event, occurred_at, props (text values at {pointers}),
-- channel. ClickHouse arrays cannot be null: where properties is null, props holds one value
-- more than there are pointers, and the store turns that list into null (DuckDB's result).
-- json_text reads one top-level value as DuckDB's json_extract_string does: the pointer
-- (RFC 6901, always one top-level name) decoded to its key (pointer_key), null for a missing
-- value or a JSON null (JSONExtractString would give ''), strings unescaped, other values as
-- compact JSON text, and '.0' after a double ClickHouse writes as digits only (DuckDB writes
-- 1.0, not 1; JSONType is asked only then, so most values are parsed once).
-- campaign_source reads context.campaign.source the same way. One difference remains, inside a
-- value that is itself an object or array: ClickHouse writes a whole double there as 1 (DuckDB
-- 1.0) and escapes U+2028 and U+2029 (DuckDB writes them as they are).
with
    (pointer) -> replaceAll(replaceAll(substring(pointer, 2), '~1', '/'), '~0', '~') as pointer_key,
    (doc, key) -> JSONExtract(doc, key, 'Nullable(String)') as json_value,
    (doc, key) -> if(
        match(json_value(doc, key), '^-?[0-9]+$') and JSONType(doc, key) = 'Double',
        concat(json_value(doc, key), '.0'),
        json_value(doc, key)
    ) as json_text,
    (doc) -> if(
        match(JSONExtract(doc, 'campaign', 'source', 'Nullable(String)'), '^-?[0-9]+$')
            and JSONType(doc, 'campaign', 'source') = 'Double',
        concat(JSONExtract(doc, 'campaign', 'source', 'Nullable(String)'), '.0'),
        JSONExtract(doc, 'campaign', 'source', 'Nullable(String)')
    ) as campaign_source,

candidates as (
    select type, event, user_id, anonymous_id, occurred_at, properties, context
    from events final
    where occurred_at >= {start:DateTime64(6, 'UTC')} and occurred_at < {end:DateTime64(6, 'UTC')}
        and (event in {event_names:Array(String)} or type in {any_types:Array(String)})
),

resolved as (
    select
        coalesce(own.user_id, links.linked_user_id, concat('anon:', own.anonymous_id)) as canonical_id,
        coalesce(own.user_id, links.linked_user_id) is not null as identified,
        own.type as event_type,
        own.event as event_name,
        own.occurred_at as event_at,
        own.properties as event_properties,
        own.context as event_context
    from candidates as own
    left join identity_links_in_force as links on links.anonymous_id = own.anonymous_id
)

select
    canonical_id as user_id,
    identified as is_identified,
    toString(event_type) as type,
    event_name as event,
    event_at as occurred_at,
    if(
        event_properties is null,
        arrayResize([cast(null, 'Nullable(String)')], length({pointers:Array(String)}) + 1),
        arrayMap(pointer -> json_text(event_properties, pointer_key(pointer)), {pointers:Array(String)})
    ) as props,
    coalesce(
        json_text(event_properties, pointer_key({channel_pointer:String})),
        campaign_source(event_context)
    ) as channel
from resolved
where identified or not {identified_only:Bool}
