-- Who recorded decision {decision_id} of a launch: the claim of its first row inserted.
-- Parameters: launch_key, decision_id. Returns: claim (no row while none is visible).
select claim
from decisions
where launch_key = {launch_key:String} and decision_id = {decision_id:Int32}
order by _block_number
limit 1
