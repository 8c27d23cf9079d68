-- The verdicts each launch had at its last alert evaluation ({"launch": ..., "kpi:<id>": ...}),
-- so "a verdict changed since the last evaluation" survives restarts.
create table if not exists launch_evaluations (
    launch_key varchar primary key,
    verdicts json not null,
    as_of timestamp not null,
    evaluated_at timestamp not null
)
