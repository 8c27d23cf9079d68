-- Every recorded version of one launch, oldest first: rows of changes whose claim won (or
-- restored rows), written since the launch was last deleted; a version's latest copy.
-- Parameters: launch_key. Returns version, spec (JSON text), recorded_at, recorded_by, source.
with
    changes as (
        select seq, claim, kind
        from launch_claims
        where launch_key = {launch_key:String}
        order by _block_number
        limit 1 by seq
    )

select version, spec, recorded_at, recorded_by, source
from launch_versions
where launch_key = {launch_key:String}
    and (claim = '' or (seq, claim) in (select seq, claim from changes))
    and seq >= (select coalesce(max(seq), 0) from changes where kind = 'delete')
order by version, seq desc
limit 1 by version
