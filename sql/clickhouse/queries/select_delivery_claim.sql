-- Who made revision {revision} of a delivery: the claim of its first row inserted.
-- Parameters: subject, channel, revision. Returns: claim (no row while none is visible).
select claim
from deliveries
where subject = {subject:String} and channel = {channel:String} and revision = {revision:UInt64}
order by _block_number
limit 1
