-- Records a new version of a launch spec.
-- Parameters: $launch_key, $version, $spec (JSON text), $recorded_at, $recorded_by, $source
-- ('git', 'editor' or NULL).
insert into launch_versions (launch_key, version, spec, recorded_at, recorded_by, source)
values ($launch_key, $version, $spec, $recorded_at, $recorded_by, $source)
