-- What was sent where: one row per subject ('review:2026-W47', 'alert:<alert_id>') and channel
-- ('email', 'webhook'). The row is the claim: inserted before sending, so a week goes out once
-- per channel whatever restarts or service processes there are; a failed send stays here with
-- its error and when it is retried next, until it is sent.
create table if not exists deliveries (
    subject varchar not null,
    channel varchar not null,
    status varchar not null,
    attempts integer not null,
    claimed_by varchar not null,
    lease_until timestamp,
    next_attempt_at timestamp,
    created_at timestamp not null,
    updated_at timestamp not null,
    sent_at timestamp,
    last_error varchar,
    primary key (subject, channel)
)
