-- The key of every launch that exists (has a version written since it was last deleted), sorted.
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

select distinct v.launch_key
from launch_versions as v
left join deletions as d on v.launch_key = d.launch_key
where (v.claim = '' or (v.launch_key, v.seq, v.claim) in (select launch_key, seq, claim from changes))
    and v.seq >= ifNull(d.deleted_seq, 0)
order by v.launch_key
