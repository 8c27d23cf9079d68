-- Who made change {seq} of a launch: the claim inserted first for that number.
-- Parameters: launch_key, seq. Returns: claim (no row while no claim is visible).
select claim
from launch_claims
where launch_key = {launch_key:String} and seq = {seq:UInt64}
order by _block_number
limit 1
