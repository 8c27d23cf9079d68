-- Backup: every alert as it stands, with the DuckDB table's columns in its order.
select launch_key, kind, subject, occurrence, state, message, raised_at, as_of, cleared_at, cleared_message
from alerts
order by cleared_at is null, _block_number
limit 1 by launch_key, kind, subject, occurrence
