-- Launch metrics computed a second way: plain DuckDB SQL written from the metric spec alone,
-- for checking the Polars pipeline (tests/test_report_reference.py) and as the hand-written
-- baseline of the report benchmark (bench/report.py).
--
-- One launch of the sample's shape: exposed = track "Announcement Viewed" with
-- properties.feature = $feature, or page "Feature Page" with properties.path = $feature_path,
-- used = track "Feature Used" with properties.feature = $feature; converted = track
-- "Plan Upgraded" with properties.to_plan = 'premium'; audience = identified users whose
-- trait $audience_pointer as of the window start is one of $audience_values; channel = the
-- property $channel_pointer, else context.campaign.source, else '(none)'.
--
-- Parameters: $launched_at, $window_end (launched_at + window_days), $as_of, $feature,
-- $feature_path, $audience_values (list), and the RFC 6901 JSON pointers of the audience trait,
-- the segment trait and the channel property: $audience_pointer, $segment_pointer,
-- $channel_pointer (e.g. '/plan'; names are used literally, never as paths).
-- Statements are separated by a semicolon at the end of a line. A statement whose first line is
-- `-- result: NAME` returns rows; the others build temporary tables for the later ones.

-- The window [launched, wend), cut at as_of; the baseline period [bstart, launched) has the
-- same length.
create or replace temp table ref_period as
select
    launched,
    wend,
    launched - (wend - launched) as bstart
from (
    select
        $launched_at::timestamp as launched,
        least($window_end::timestamp, greatest($as_of::timestamp, $launched_at::timestamp)) as wend
);

-- The audience is identified users only, so events whose canonical user is not a userId (the
-- event's own, else the one its anonymousId is linked to) are left out at once.

-- Activity in the window: per identified user and UTC day, the first event's time.
create or replace temp table ref_days as
select
    coalesce(e.user_id, l.user_id) as uid,
    e.occurred_at::date as day,
    min(e.occurred_at) as first_t
from events as e
cross join ref_period as p
left join identity_links as l
    on e.user_id is null and l.anonymous_id = e.anonymous_id
where e.occurred_at >= p.launched and e.occurred_at < p.wend
    and coalesce(e.user_id, l.user_id) is not null
group by all;

-- Activity in the baseline period: the identified users with an event in it.
create or replace temp table ref_baseline_users as
select distinct coalesce(e.user_id, l.user_id) as uid
from events as e
cross join ref_period as p
left join identity_links as l
    on e.user_id is null and l.anonymous_id = e.anonymous_id
where e.occurred_at >= p.bstart and e.occurred_at < p.launched
    and coalesce(e.user_id, l.user_id) is not null;

-- Signal events of identified users in the baseline period and the window, with the channel of
-- each exposure: the property $channel_pointer, else context.campaign.source, else '(none)'.
create or replace temp table ref_signals as
select
    uid,
    t,
    t >= launched as in_window,
    is_exposed,
    is_used,
    is_converted,
    case when is_exposed then coalesce(
        json_extract_string(properties, $channel_pointer),
        json_extract_string(context, '$.campaign.source'),
        '(none)'
    ) end as channel
from (
    select
        coalesce(e.user_id, l.user_id) as uid,
        e.occurred_at as t,
        p.launched,
        case
            when e.type = 'track' and e.event = 'Announcement Viewed'
                then json_extract_string(e.properties, '$.feature') is not distinct from $feature
            when e.type = 'page' and e.event = 'Feature Page'
                then json_extract_string(e.properties, '$.path') is not distinct from $feature_path
            else false
        end as is_exposed,
        case
            when e.type = 'track' and e.event = 'Feature Used'
                then json_extract_string(e.properties, '$.feature') is not distinct from $feature
            else false
        end as is_used,
        case
            when e.type = 'track' and e.event = 'Plan Upgraded'
                then json_extract_string(e.properties, '$.to_plan') is not distinct from 'premium'
            else false
        end as is_converted,
        e.properties,
        e.context
    from events as e
    cross join ref_period as p
    left join identity_links as l
        on e.user_id is null and l.anonymous_id = e.anonymous_id
    where e.occurred_at >= p.bstart and e.occurred_at < p.wend
        and e.event in ('Announcement Viewed', 'Feature Page', 'Feature Used', 'Plan Upgraded')
)
where uid is not null and (is_exposed or is_used or is_converted);

-- Trait values (audience trait and segment trait) seen before the window's end, each timed by
-- its event, by canonical user.
create or replace temp table ref_trait_values as
select
    coalesce(e.user_id, l.user_id) as uid,
    e.occurred_at as t,
    json_extract_string(e.traits, $audience_pointer) as audience_value,
    json_extract_string(e.traits, $segment_pointer) as segment_value
from events as e
cross join ref_period as p
left join identity_links as l
    on e.user_id is null and l.anonymous_id = e.anonymous_id
where e.traits is not null and e.occurred_at < p.wend
    and coalesce(e.user_id, l.user_id) is not null;

-- A trait as of a period's start s (period [s, w)): the latest value at or before s, else
-- the first value inside the period, else none. Once for the window, once for the baseline.
create or replace temp table ref_traits as
select
    uid,
    coalesce(
        arg_max(audience_value, t) filter (where audience_value is not null and t <= launched),
        arg_min(audience_value, t) filter (where audience_value is not null and t >= launched)
    ) as window_audience,
    coalesce(
        arg_max(segment_value, t) filter (where segment_value is not null and t <= launched),
        arg_min(segment_value, t) filter (where segment_value is not null and t >= launched)
    ) as window_segment,
    coalesce(
        arg_max(audience_value, t) filter (where audience_value is not null and t <= bstart),
        arg_min(audience_value, t)
            filter (where audience_value is not null and t >= bstart and t < launched)
    ) as baseline_audience
from ref_trait_values
cross join ref_period
group by uid;

-- A: audience users active in the window, with what the metrics need of each.
create or replace temp table ref_users as
select
    a.uid,
    coalesce(a.segment, '(none)') as segment,
    a.first_any,
    s.first_exposed,
    s.first_use,
    s.first_exposed is not null as exposed,
    s.first_use is not null as adopter,
    s.first_exposed is not null and s.first_use is not null as tried,
    s.first_use is not null and s.use_days >= 2 as repeated,
    coalesce(s.last_converted >= s.first_use, false) as converted,
    s.last_converted is not null as converted_any
from (
    select d.uid, any_value(tr.window_segment) as segment, min(d.first_t) as first_any
    from ref_days as d
    join ref_traits as tr on tr.uid = d.uid
    where list_contains($audience_values, tr.window_audience)
    group by d.uid
) as a
left join (
    select
        uid,
        min(t) filter (where is_exposed) as first_exposed,
        min(t) filter (where is_used) as first_use,
        count(distinct t::date) filter (where is_used) as use_days,
        max(t) filter (where is_converted) as last_converted
    from ref_signals
    where in_window
    group by uid
) as s on s.uid = a.uid;

-- result: summary
select
    count(*) as active,
    count(*) filter (where exposed) as exposed,
    count(*) filter (where adopter) as adopters,
    count(*) filter (where tried) as tried,
    count(*) filter (where repeated) as repeated,
    count(*) filter (where tried and repeated) as tried_repeated,
    count(*) filter (where converted) as converted,
    count(*) filter (where tried and converted) as tried_converted,
    count(*) filter (where not adopter) as non_adopters,
    count(*) filter (where not adopter and converted_any) as non_adopters_converted,
    median((epoch_us(first_use) - epoch_us(first_any)) / 86400e6) filter (where adopter)
        as median_days_to_adopt,
    (select wend from ref_period) as window_end
from ref_users;

-- result: baseline
-- Audience users (traits as of the period's start) active in [launched - L, launched), and those
-- of them with a converted event in it.
select
    count(*) as active,
    count(*) filter (where c.uid is not null) as converted
from ref_baseline_users as d
join ref_traits as tr on tr.uid = d.uid
left join (
    select distinct uid from ref_signals where not in_window and is_converted
) as c on c.uid = d.uid
where list_contains($audience_values, tr.baseline_audience);

-- Adopters' used events in the window, with their first use.
create or replace temp table ref_uses as
select s.uid, s.t, u.first_use
from ref_signals as s
join ref_users as u on u.uid = s.uid
where s.in_window and s.is_used;

-- result: retention
-- Weeks 1 to 3 (those a 28-day window can hold). Week n of an adopter is [f + 7n days,
-- f + 7(n+1) days), f the first use; only adopters whose week n is over by the window's end
-- count, in both numerator and denominator.
select
    w.week,
    count(*) filter (where u.first_use + to_days(7 * (w.week + 1)) <= p.wend) as n,
    count(*) filter (
        where u.first_use + to_days(7 * (w.week + 1)) <= p.wend and h.uid is not null
    ) as k
from ref_users as u
cross join (select unnest(range(1, 4)) as week) as w
cross join ref_period as p
left join (
    select distinct uid, (epoch_us(t) - epoch_us(first_use)) // 604800000000 as week
    from ref_uses
) as h on h.uid = u.uid and h.week = w.week
where u.adopter
group by w.week
order by w.week;

-- result: stickiness
-- Mean over the window's full UTC days (days with no use count as 0) of the share of adopters
-- using it that day.
select
    count(*) as full_days,
    (select count(*) from ref_users where adopter) as adopters,
    avg(coalesce(d.users, 0) / nullif((select count(*) from ref_users where adopter), 0)) as value
from (
    select unnest(generate_series(
        date_trunc('day', p.launched + interval 1 day - interval 1 microsecond),
        date_trunc('day', p.wend) - interval 1 day,
        interval 1 day
    )) as day
    from ref_period as p
) as f
left join (
    select date_trunc('day', t) as day, count(distinct uid) as users from ref_uses group by 1
) as d on d.day = f.day;

-- result: channels
-- Per channel: users of E exposed through it, and of those, users whose first use in the window
-- is at or after their first exposure through it.
select
    c.channel,
    count(*) as exposed,
    count(*) filter (where u.first_use >= c.first_exposed) as tried_after
from (
    select uid, channel, min(t) as first_exposed
    from ref_signals
    where in_window and is_exposed
    group by uid, channel
) as c
join ref_users as u on u.uid = c.uid
group by c.channel
order by c.channel;

-- result: segments
select
    segment as value,
    count(*) as active,
    count(*) filter (where exposed) as exposed,
    count(*) filter (where adopter) as adopters,
    count(*) filter (where tried) as tried,
    count(*) filter (where repeated) as repeated,
    count(*) filter (where converted) as converted
from ref_users
group by segment
order by segment;

-- result: timeline
-- Per UTC day of the window: audience users active that day, first exposed that day, first
-- using it that day, and adopters so far / active users so far.
select
    g.day,
    coalesce(a.users, 0) as active,
    coalesce(x.users, 0) as newly_exposed,
    coalesce(n.users, 0) as new_adopters,
    sum(coalesce(n.users, 0)) over (order by g.day) as adopters_so_far,
    sum(coalesce(f.users, 0)) over (order by g.day) as active_so_far
from (
    select unnest(generate_series(
        date_trunc('day', p.launched),
        date_trunc('day', p.wend - interval 1 microsecond),
        interval 1 day
    ))::date as day
    from ref_period as p
) as g
left join (
    select d.day, count(*) as users
    from ref_days as d
    semi join ref_users as u on u.uid = d.uid
    group by d.day
) as a on a.day = g.day
left join (
    select first_exposed::date as day, count(*) as users from ref_users group by 1
) as x on x.day = g.day
left join (
    select first_use::date as day, count(*) as users from ref_users group by 1
) as n on n.day = g.day
left join (
    select first_any::date as day, count(*) as users from ref_users group by 1
) as f on f.day = g.day
order by g.day;
