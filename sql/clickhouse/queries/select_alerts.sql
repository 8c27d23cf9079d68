-- Alerts, newest first: of one launch, or of every launch when launch_key is null; each as it
-- stands (its first clearing if cleared, else its raise).
-- Parameters: launch_key.
-- Returns: launch_key, kind, subject, occurrence, state, message, raised_at, as_of, cleared_at,
-- cleared_message.
select launch_key, kind, subject, occurrence, state, message, raised_at, as_of, cleared_at, cleared_message
from (
    select launch_key, kind, subject, occurrence, state, message, raised_at, as_of, cleared_at, cleared_message
    from alerts
    where {launch_key:Nullable(String)} is null or launch_key = {launch_key:Nullable(String)}
    order by cleared_at is null, _block_number
    limit 1 by launch_key, kind, subject, occurrence
)
order by raised_at desc, launch_key, kind, subject, occurrence desc
