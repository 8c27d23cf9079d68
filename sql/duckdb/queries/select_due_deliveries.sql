-- Deliveries to attempt again now: failed ones whose retry time has come, and sends whose
-- sender stopped before recording how they went (their lease ran out).
-- Parameters: $now.
-- Returns: subject, channel.
select subject, channel
from deliveries
where (status = 'failed' and next_attempt_at <= $now)
    or (status = 'sending' and lease_until < $now)
order by subject, channel
