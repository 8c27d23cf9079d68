-- Backup: every stored event, once (FINAL keeps the first received copy of each), with exactly
-- the columns of the DuckDB events table, in its order (sql/duckdb/schema/001_create_events.sql).
select
    source,
    message_id,
    type,
    event,
    user_id,
    anonymous_id,
    previous_id,
    group_id,
    properties,
    traits,
    context,
    original_timestamp,
    sent_at,
    received_at,
    occurred_at,
    is_clamped,
    api
from events final
