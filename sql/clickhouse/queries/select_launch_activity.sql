-- Each canonical user's activity around a launch, one row per user: the narrow input of the
-- launch report (who was active when), never the raw events.
-- Parameters: {start} (the baseline period's start), {launched} (launched_at), {end} (the
-- window's end; all UTC); {days} (UTC days the window touches, at least 1); {identified_only}
-- (leave out users whose events never carry or link to a userId).
-- Returns user_id (canonical), is_identified, first_event_at (first event in [{launched},
-- {end})), last_event_before (last event in [{start}, {launched})) and active_days: one
-- character per UTC day from the launch's day, '1' when the user had an event that day inside
-- [{launched}, {end}), else '0' (null when no event in the window).
-- Events (read FINAL: one row per (source, message_id)) are first grouped by their own
-- (userId, anonymousId), which is cheap and small, and only those groups are resolved to
-- canonical users: the event's userId, else the userId its anonymousId is linked to (the link
-- in force: argMin(user_id, (linked_at, recorded_at))), else 'anon:' || anonymousId. The
-- linked user is Nullable so that an unmatched left join leaves it null (not '') without
-- join_use_nulls. Aggregates over no rows are null (minIfOrNull, maxIfOrNull). The window's
-- days are day offsets (groupUniqArray; windows reach 366 days, too many for a UInt64 mask),
-- rendered as the '0'/'1' string from their sorted gaps.
with own_ids as (
    select
        user_id,
        anonymous_id,
        minIfOrNull(occurred_at, occurred_at >= {launched:DateTime64(6, 'UTC')}) as first_event_at,
        maxIfOrNull(occurred_at, occurred_at < {launched:DateTime64(6, 'UTC')}) as last_event_before,
        groupUniqArrayIf(
            toUInt32(dateDiff('day', toDate({launched:DateTime64(6, 'UTC')}), toDate(occurred_at))),
            occurred_at >= {launched:DateTime64(6, 'UTC')}
        ) as day_offsets
    from events final
    where occurred_at >= {start:DateTime64(6, 'UTC')} and occurred_at < {end:DateTime64(6, 'UTC')}
    group by user_id, anonymous_id
),

resolved as (
    select
        coalesce(own.user_id, links.linked_user_id, concat('anon:', own.anonymous_id)) as canonical_id,
        coalesce(own.user_id, links.linked_user_id) is not null as identified,
        own.first_event_at as first_at,
        own.last_event_before as last_before,
        own.day_offsets as offsets
    from own_ids as own
    left join identity_links_in_force as links on links.anonymous_id = own.anonymous_id
),

users as (
    select
        canonical_id,
        identified,
        min(first_at) as first_event_at,
        max(last_before) as last_event_before,
        arraySort(groupUniqArrayArray(offsets)) as active_offsets
    from resolved
    where identified or not {identified_only:Bool}
    group by canonical_id, identified
)

select
    canonical_id as user_id,
    identified as is_identified,
    first_event_at,
    last_event_before,
    if(
        empty(active_offsets),
        null,
        concat(
            arrayStringConcat(
                arrayMap(
                    (day, i) -> concat(repeat('0', day - if(i = 1, 0, active_offsets[i - 1] + 1)), '1'),
                    active_offsets,
                    arrayEnumerate(active_offsets)
                )
            ),
            repeat('0', {days:UInt32} - 1 - active_offsets[-1])
        )
    ) as active_days
from users
