-- Deliveries to attempt again now: failed ones whose retry time has come, and sends whose
-- sender stopped before recording how they went (their lease ran out).
-- Parameters: now. Returns: subject, channel.
select subject, channel
from (
    select subject, channel, status, lease_until, next_attempt_at
    from deliveries
    order by revision desc, _block_number
    limit 1 by subject, channel
)
where (status = 'failed' and next_attempt_at <= {now:DateTime64(6, 'UTC')})
    or (status = 'sending' and lease_until < {now:DateTime64(6, 'UTC')})
order by subject, channel
