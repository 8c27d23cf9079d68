-- Records how a claimed attempt went: sent ($error null), or failed with $error and the time
-- of the next attempt ($next_attempt_at null: no more automatic attempts).
-- Parameters: $subject, $channel, $claimed_by, $now, $error, $next_attempt_at.
update deliveries
set status = case when $error is null then 'sent' else 'failed' end,
    lease_until = null,
    next_attempt_at = case when $error is null then null else $next_attempt_at end,
    sent_at = case when $error is null then $now else sent_at end,
    last_error = $error,
    updated_at = $now
where subject = $subject
    and channel = $channel
    and claimed_by = $claimed_by
    and status = 'sending'
