-- Every delivery, newest first.
-- Returns: subject, channel, status, attempts, next_attempt_at, sent_at, last_error, updated_at.
select subject, channel, status, attempts, next_attempt_at, sent_at, last_error, updated_at
from deliveries
order by updated_at desc, subject, channel
