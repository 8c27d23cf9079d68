-- The verdicts of every launch at its latest alert evaluation (its last row inserted).
-- Returns: launch_key, verdicts (JSON text).
select launch_key, verdicts
from launch_evaluations
order by _block_number desc
limit 1 by launch_key
