-- Events refused one by one, with why and their raw payload, so nothing sent vanishes silently.
-- rejected_id hashes source, reason and payload: a resent bad event is kept once.
create table if not exists rejected_events (
    rejected_id varchar primary key,
    source varchar not null,
    received_at timestamp not null,
    reason varchar not null,
    detail varchar not null,
    payload varchar not null
)
