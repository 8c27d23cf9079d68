-- Backup: every KPI amendment whose change's claim won (or restored), with the DuckDB table's
-- columns in its order.
with
    changes as (
        select launch_key, seq, claim
        from launch_claims
        order by _block_number
        limit 1 by launch_key, seq
    )

select launch_key, amendment_id, kpi_id, field, old_value, new_value, amended_at, amended_by, reason
from kpi_amendments
where claim = '' or (launch_key, seq, claim) in (select launch_key, seq, claim from changes)
order by launch_key, amendment_id, kpi_id, field
