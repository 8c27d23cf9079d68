-- What a review decided for a launch (keep, iterate, double-down, roll-back, sunset), why, who
-- decided, an optional follow-up launch, and the evidence as it stood: the verdict, each KPI's
-- value, interval and verdict, and as_of (JSON). Never edited: a later decision supersedes.
create table if not exists decisions (
    launch_key varchar not null,
    decision_id integer not null,
    decision varchar not null,
    reason varchar not null,
    decided_by varchar not null,
    follow_up varchar,
    decided_at timestamp not null,
    evidence json not null,
    primary key (launch_key, decision_id)
)
