-- Every recorded version of one launch, oldest first.
-- Parameters: $launch_key. Returns version, spec (JSON text), recorded_at, recorded_by, source.
select version, spec::varchar as spec, recorded_at, recorded_by, source
from launch_versions
where launch_key = $launch_key
order by version
