-- Every accepted event, stored once per (source, message_id).
-- Times are naive TIMESTAMPs in UTC. occurred_at is the skew-corrected event time.
create table if not exists events (
    source varchar not null,
    message_id varchar not null,
    type varchar not null,
    event varchar,
    user_id varchar,
    anonymous_id varchar,
    previous_id varchar,
    group_id varchar,
    properties json,
    traits json,
    context json,
    original_timestamp timestamp,
    sent_at timestamp,
    received_at timestamp not null,
    occurred_at timestamp not null,
    is_clamped boolean not null,
    api varchar not null,
    primary key (source, message_id)
)
