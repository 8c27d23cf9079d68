-- Every KPI amendment of one launch, in the order made.
-- Parameters: $launch_key. Returns amendment_id, kpi_id, field, old_value, new_value (JSON text),
-- amended_at, amended_by, reason.
select amendment_id, kpi_id, field, old_value::varchar as old_value, new_value::varchar as new_value,
       amended_at, amended_by, reason
from kpi_amendments
where launch_key = $launch_key
order by amendment_id, kpi_id, field
