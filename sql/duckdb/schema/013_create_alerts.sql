-- Warnings between meetings: one row per time a condition started to hold for a launch (kind
-- 'silent_signal', 'verdict_changed', 'off_path'; subject names what it is about, e.g.
-- 'exposed:0' or 'kpi:adoption'), cleared when it stops holding. `state` is what the condition
-- was raised for (a verdict change: the new verdict), so the same condition is raised once.
create table if not exists alerts (
    launch_key varchar not null,
    kind varchar not null,
    subject varchar not null,
    occurrence integer not null,
    state varchar not null,
    message varchar not null,
    raised_at timestamp not null,
    as_of timestamp not null,
    cleared_at timestamp,
    cleared_message varchar,
    primary key (launch_key, kind, subject, occurrence)
)
