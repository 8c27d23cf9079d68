-- Each canonical user's activity around a launch, one row per user: the narrow input of the
-- launch report (who was active when), never the raw events.
-- Parameters: $start (the baseline period's start), $launched (launched_at), $end (the window's
-- end; all naive UTC timestamps); $days (UTC days the window touches, at least 1);
-- $identified_only (leave out users whose events never carry or link to a userId).
-- Returns user_id (canonical), is_identified, first_event_at (first event in [$launched,
-- $end)), last_event_before (last event in [$start, $launched)) and active_days: one character
-- per UTC day from the launch's day, '1' when the user had an event that day inside
-- [$launched, $end), else '0' (null when no event in the window).
-- Events are first grouped by their own (userId, anonymousId), which is cheap and small, and
-- only those groups are resolved to canonical users (resolve_identity, sql/schema).
with own_ids as (
    select
        user_id,
        anonymous_id,
        min(occurred_at) filter (where occurred_at >= $launched) as first_event_at,
        max(occurred_at) filter (where occurred_at < $launched) as last_event_before,
        bitstring_agg(
            case
                when occurred_at >= $launched
                    then datediff('day', cast($launched as date), cast(occurred_at as date))
            end,
            0,
            $days - 1
        ) as active_days
    from events
    where occurred_at >= $start and occurred_at < $end
    group by user_id, anonymous_id
)

select
    user_id,
    is_identified,
    min(first_event_at) as first_event_at,
    max(last_event_before) as last_event_before,
    cast(bit_or(active_days) as varchar) as active_days
from resolve_identity(own_ids)
where is_identified or not $identified_only
group by user_id, is_identified
