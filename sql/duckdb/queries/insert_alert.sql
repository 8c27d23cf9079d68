-- Raises an alert: a new occurrence of (launch, kind, subject), unless one is still open.
-- Parameters: $launch_key, $kind, $subject, $state, $message, $raised_at, $as_of.
-- Returns: the occurrence when raised, no row when one was already open.
with next_occurrence as (
    select coalesce(max(occurrence), 0) + 1 as occurrence
    from alerts
    where launch_key = $launch_key and kind = $kind and subject = $subject
)

insert into alerts
select $launch_key, $kind, $subject, occurrence, $state, $message, $raised_at, $as_of, null, null
from next_occurrence
where not exists (
    select 1
    from alerts
    where launch_key = $launch_key and kind = $kind and subject = $subject and cleared_at is null
)
returning occurrence
