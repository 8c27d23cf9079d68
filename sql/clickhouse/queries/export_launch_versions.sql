-- Backup: every version of every launch that exists, with the DuckDB table's columns in its
-- order (as select_launch_versions resolves them).
with
    changes as (
        select launch_key, seq, claim, kind
        from launch_claims
        order by _block_number
        limit 1 by launch_key, seq
    ),

    deletions as (
        select launch_key, max(seq) as deleted_seq
        from changes
        where kind = 'delete'
        group by launch_key
    )

select v.launch_key as launch_key, v.version as version, v.spec as spec, v.recorded_at as recorded_at,
    v.recorded_by as recorded_by, v.source as source
from launch_versions as v
left join deletions as d on v.launch_key = d.launch_key
where (v.claim = '' or (v.launch_key, v.seq, v.claim) in (select launch_key, seq, claim from changes))
    and v.seq >= ifNull(d.deleted_seq, 0)
order by v.launch_key, v.version, v.seq desc
limit 1 by v.launch_key, v.version
