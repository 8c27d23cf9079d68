-- Claims a delivery again for another attempt: one that failed and is due for a retry (any
-- failed one with $force, a send asked for by hand), or one whose sender stopped before
-- saying how it went (its lease ran out).
-- Parameters: $subject, $channel, $claimed_by, $lease_until, $now, $force.
-- Returns: the attempt number when this call claimed it, no row otherwise.
update deliveries
set status = 'sending',
    attempts = attempts + 1,
    claimed_by = $claimed_by,
    lease_until = $lease_until,
    updated_at = $now
where subject = $subject
    and channel = $channel
    and (
        (status = 'failed' and ($force or next_attempt_at <= $now))
        or (status = 'sending' and lease_until < $now)
    )
returning attempts
