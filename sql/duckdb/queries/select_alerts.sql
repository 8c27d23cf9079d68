-- Alerts, newest first: of one launch, or of every launch when $launch_key is null.
-- Parameters: $launch_key.
-- Returns: launch_key, kind, subject, occurrence, state, message, raised_at, as_of, cleared_at,
-- cleared_message.
select launch_key, kind, subject, occurrence, state, message, raised_at, as_of, cleared_at, cleared_message
from alerts
where $launch_key is null or launch_key = $launch_key
order by raised_at desc, launch_key, kind, subject, occurrence desc
