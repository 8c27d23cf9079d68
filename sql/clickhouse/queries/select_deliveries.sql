-- Every delivery, newest first (each at its highest revision, the first row inserted of it).
-- Returns: subject, channel, status, attempts, next_attempt_at, sent_at, last_error, updated_at.
select subject, channel, status, attempts, next_attempt_at, sent_at, last_error, updated_at
from (
    select subject, channel, status, attempts, next_attempt_at, sent_at, last_error, updated_at
    from deliveries
    order by revision desc, _block_number
    limit 1 by subject, channel
)
order by updated_at desc, subject, channel
