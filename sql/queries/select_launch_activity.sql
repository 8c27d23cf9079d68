-- Each canonical user's activity per UTC day in [$start, $end): the narrow input of the
-- launch report (who was active when), never the raw events.
-- Parameters: $start, $end (naive UTC timestamps); $launch_time (launched_at's time of day).
-- Returns user_id (canonical), is_identified, day, first_at: the user's first event of each
-- part of a UTC day split at the launch's time of day, because every window and baseline
-- period starts at that time (or at $start), and "active in a period" needs the first event
-- at or after its start, not merely the day's first event.
with period as (
    select user_id, anonymous_id, occurred_at
    from events
    where occurred_at >= $start and occurred_at < $end
),

resolved as (
    select
        coalesce(period.user_id, links.user_id) as known_user,
        period.anonymous_id,
        period.occurred_at
    from period
    left join identity_links as links
        on period.user_id is null and links.anonymous_id = period.anonymous_id
)

select
    coalesce(known_user, 'anon:' || anonymous_id) as user_id,
    known_user is not null as is_identified,
    cast(occurred_at as date) as day,
    min(occurred_at) as first_at
from resolved
group by 1, 2, 3, cast(occurred_at as time) >= $launch_time
