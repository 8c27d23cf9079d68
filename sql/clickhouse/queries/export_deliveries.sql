-- Backup: every delivery as it stands, with the DuckDB table's columns in its order.
select subject, channel, status, attempts, claimed_by, lease_until, next_attempt_at, created_at, updated_at,
    sent_at, last_error
from deliveries
order by revision desc, _block_number
limit 1 by subject, channel
