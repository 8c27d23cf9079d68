-- The number of the last change claimed for a launch (0: none). Parameters: launch_key.
select max(seq)
from launch_claims
where launch_key = {launch_key:String}
