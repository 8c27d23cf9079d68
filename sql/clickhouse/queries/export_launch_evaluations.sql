-- Backup: each launch's latest alert evaluation, with the DuckDB table's columns in its order.
select launch_key, verdicts, as_of, evaluated_at
from launch_evaluations
order by _block_number desc
limit 1 by launch_key
