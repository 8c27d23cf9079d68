-- The events that may be a launch's signals in [$start, $end), identity resolved
-- (resolve_identity, sql/schema), with the property values its matchers test (the pipeline
-- applies the matchers exactly).
-- Parameters: $start, $end; $event_names (names any matcher names); $any_types (types of
-- matchers without a name); $pointers (JSON pointers of the matchers' properties, in order);
-- $channel_pointer (the launch's channel property); $identified_only (leave out users whose
-- events never carry or link to a userId).
-- Returns user_id, is_identified, type, event, occurred_at, props (text values at $pointers), channel.
with candidates as (
    select type, event, user_id, anonymous_id, occurred_at, properties, context
    from events
    where occurred_at >= $start and occurred_at < $end
        and (list_contains($event_names, event) or list_contains($any_types, type))
)

select
    user_id,
    is_identified,
    type,
    event,
    occurred_at,
    json_extract_string(properties, $pointers) as props,
    coalesce(
        json_extract_string(properties, $channel_pointer),
        json_extract_string(context, '/campaign/source')
    ) as channel
from resolve_identity(candidates)
where is_identified or not $identified_only
