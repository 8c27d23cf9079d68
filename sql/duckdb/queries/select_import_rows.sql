-- Rows of an import chunk (Segment-shaped columns, as a Parquet export holds them) as
-- events-table rows, by the rules of app/ingest.py, for every row those rules decide without
-- Python; is_simple is false for the others (a rejection, a missing messageId, JSON whose text
-- DuckDB and orjson could write differently), which the importer parses one by one.
-- Parameters: $source, $received_at (for rows without receivedAt), $max_event_bytes.
-- Reads staged_import, an Arrow table that DuckDB finds as a local variable of that name in
-- the calling Python function (a replacement scan; see _execute_staged in
-- app/storage/duckdb_events.py): row_no, type, event, name, userId, anonymousId, previousId,
-- groupId, messageId (text), timestamp, originalTimestamp, sentAt, receivedAt (timestamps),
-- properties, traits, context (JSON text), and extra_bytes (what other columns add to the
-- event's size, at most).
with raw as (
    select
        row_no,
        type,
        event,
        name,
        nullif(userId, '') as user_id,
        nullif(anonymousId, '') as anonymous_id,
        nullif(previousId, '') as previous_id,
        nullif(groupId, '') as group_id,
        nullif(messageId, '') as message_id,
        nullif(properties, '') as properties_text,
        nullif(traits, '') as traits_text,
        nullif(context, '') as context_text,
        coalesce("timestamp", originalTimestamp) as event_time,
        sentAt as sent_time,
        receivedAt as received_time,
        -- orjson.dumps(event) is at most this long (strings escaped at 6 bytes a character).
        2 + extra_bytes
        + coalesce(12 + 6 * strlen(type), 0) + coalesce(13 + 6 * strlen(event), 0)
        + coalesce(12 + 6 * strlen(name), 0) + coalesce(14 + 6 * strlen(userId), 0)
        + coalesce(19 + 6 * strlen(anonymousId), 0) + coalesce(18 + 6 * strlen(previousId), 0)
        + coalesce(15 + 6 * strlen(groupId), 0) + coalesce(17 + 6 * strlen(messageId), 0)
        + 50 * 4 as size_bound
    from staged_import
),

parsed_json as (
    select
        *,
        case when json_valid(properties_text) then
            case when json_type(properties_text) = 'OBJECT' then json(properties_text) end
        end as properties_json,
        case when json_valid(traits_text) then
            case when json_type(traits_text) = 'OBJECT' then json(traits_text) end
        end as traits_json,
        case when json_valid(context_text) then
            case when json_type(context_text) = 'OBJECT' then json(context_text) end
        end as context_json
    from raw
),

with_traits as (
    select
        *,
        -- Traits, else the context's traits (an object, or absent: anything else is rejected).
        coalesce(
            traits_json,
            case when traits_text is null and json_type(context_json, '$.traits') = 'OBJECT'
                then json_extract(context_json, '$.traits')::varchar end
        ) as traits_out,
        traits_text is null and context_json is not null
            and json_type(context_json, '$.traits') is not null
            and json_type(context_json, '$.traits') <> 'OBJECT' as traits_undecided
    from parsed_json
),

-- JSON text is decided here when DuckDB's minified text is certainly orjson's: no run of 16
-- digits (large numbers, written differently), no NaN or Infinity, no three-digit exponent,
-- no key written twice anywhere in it (orjson keeps the last), and within the cheap bounds of
-- app/ingest.py's _object_json (nesting, entries, length), so no walk is needed.
json_checks as (
    select
        *,
        list_transform(
            [properties_json, traits_json, context_json],
            lambda j: j is null or (
                not regexp_matches(j, '[0-9]{16}|NaN|Infinity|[eE][+-]?[0-9]{3}')
                and strlen(j) - strlen(replace(replace(j, '{', ''), '[', '')) <= 16
                and strlen(j) - strlen(replace(j, ',', '')) < 1000
                and strlen(j) <= 65536
                and len(regexp_extract_all(j, '"((?:[^"\\]|\\.)*)":', 1))
                    = len(list_distinct(regexp_extract_all(j, '"((?:[^"\\]|\\.)*)":', 1)))
            )
        ) as json_ok
    from with_traits
),

decided as (
    select
        *,
        type in ('track', 'identify', 'page', 'screen', 'group', 'alias')
        and message_id is not null
        and (user_id is not null or anonymous_id is not null)
        and (type <> 'alias' or (previous_id is not null and user_id is not null))
        and (type <> 'track' or coalesce(event, '') <> '')
        and coalesce(strlen(case when type = 'track' then event else name end), 0) <= 1024
        and coalesce(strlen(user_id), 0) <= 1024
        and coalesce(strlen(anonymous_id), 0) <= 1024
        and coalesce(strlen(previous_id), 0) <= 1024
        and coalesce(strlen(group_id), 0) <= 1024
        and coalesce(strlen(message_id), 0) <= 1024
        and (properties_text is null or properties_json is not null)
        and (traits_text is null or traits_json is not null)
        and (context_text is null or context_json is not null)
        and not traits_undecided
        and list_bool_and(json_ok)
        and size_bound + coalesce(strlen(properties_json), 0) + coalesce(strlen(traits_json), 0)
            + coalesce(strlen(context_json), 0) + 40 <= $max_event_bytes
        and coalesce(year(event_time) between 1900 and 2200, true)
        and coalesce(year(sent_time) between 1900 and 2200, true)
        and coalesce(year(received_time) between 1900 and 2200, true) as is_simple,
        coalesce(received_time, $received_at::timestamp) as received_at,
        -- The spec's event time: received_at - (sent_at - timestamp), in microseconds.
        case
            when event_time is null then null
            when coalesce(year(event_time) not between 1900 and 2200, false)
                or coalesce(year(sent_time) not between 1900 and 2200, false)
                or coalesce(year(received_time) not between 1900 and 2200, false) then null
            when sent_time is null then epoch_us(event_time)
            else epoch_us(coalesce(received_time, $received_at::timestamp))
                - (epoch_us(sent_time) - epoch_us(event_time))
        end as corrected_us
    from json_checks
)

select
    row_no,
    is_simple,
    $source::varchar as source,
    message_id,
    type,
    case when type = 'track' then event else name end as event,
    user_id,
    anonymous_id,
    previous_id,
    group_id,
    properties_json::varchar as properties,
    traits_out as traits,
    context_json::varchar as context,
    event_time as original_timestamp,
    sent_time as sent_at,
    received_at,
    case
        when corrected_us is null then received_at
        when corrected_us - epoch_us(received_at) > 82800000000::bigint then received_at
        else make_timestamp(corrected_us)
    end as occurred_at,
    coalesce(corrected_us - epoch_us(received_at) > 82800000000::bigint, false) as is_clamped,
    'import' as api
from decided
