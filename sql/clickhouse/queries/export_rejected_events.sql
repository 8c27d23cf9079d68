-- Backup: every refused event, once per rejected_id (FINAL keeps the first received), with
-- exactly the columns of the DuckDB rejected_events table, in its order.
select rejected_id, source, received_at, reason, detail, payload
from rejected_events final
