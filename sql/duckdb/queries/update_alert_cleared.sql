-- Clears the open alert of (launch, kind, subject): its condition no longer holds.
-- Parameters: $launch_key, $kind, $subject, $cleared_at, $cleared_message.
update alerts
set cleared_at = $cleared_at, cleared_message = $cleared_message
where launch_key = $launch_key and kind = $kind and subject = $subject and cleared_at is null
