-- The highest decision number taken for a launch (0: none). Parameters: launch_key.
select max(decision_id)
from decisions
where launch_key = {launch_key:String}
