-- Marks where a launch's version is kept from now on (an unchanged spec file applied from git
-- makes the launch managed from git without a new version).
-- Parameters: $launch_key, $version, $source.
update launch_versions
set source = $source
where launch_key = $launch_key and version = $version
