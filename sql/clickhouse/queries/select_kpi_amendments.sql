-- Every KPI amendment of one launch, in the order made: rows of changes whose claim won (or
-- restored rows).
-- Parameters: launch_key. Returns amendment_id, kpi_id, field, old_value, new_value (JSON text),
-- amended_at, amended_by, reason.
with
    changes as (
        select seq, claim
        from launch_claims
        where launch_key = {launch_key:String}
        order by _block_number
        limit 1 by seq
    )

select amendment_id, kpi_id, field, old_value, new_value, amended_at, amended_by, reason
from kpi_amendments
where launch_key = {launch_key:String}
    and (claim = '' or (seq, claim) in (select seq, claim from changes))
order by amendment_id, kpi_id, field
