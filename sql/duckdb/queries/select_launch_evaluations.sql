-- The verdicts of every launch at its latest alert evaluation.
-- Returns: launch_key, verdicts (JSON text).
select launch_key, verdicts::varchar as verdicts
from launch_evaluations
