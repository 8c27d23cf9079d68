-- One delivery as it stands: its highest revision, the first row inserted of it.
-- Parameters: subject, channel. Returns: revision, status, attempts, claimed_by, lease_until,
-- next_attempt_at, created_at, sent_at, last_error (no row: never claimed).
select revision, status, attempts, claimed_by, lease_until, next_attempt_at, created_at, sent_at, last_error
from deliveries
where subject = {subject:String} and channel = {channel:String}
order by revision desc, _block_number
limit 1
