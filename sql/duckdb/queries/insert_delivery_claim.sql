-- Claims one delivery (a subject on a channel) before it is sent: inserts its row, or nothing
-- when the subject was already claimed on that channel (by this or another process).
-- Parameters: $subject, $channel, $claimed_by, $lease_until, $now.
-- Returns: the attempt number (1) when this call claimed it, no row otherwise.
insert into deliveries
values ($subject, $channel, 'sending', 1, $claimed_by, $lease_until, null, $now, $now, null, null)
on conflict do nothing
returning attempts
