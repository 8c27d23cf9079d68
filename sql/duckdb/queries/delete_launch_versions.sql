-- Deletes a launch (only allowed before launch, when no amendment exists). Parameters: $launch_key.
delete from launch_versions
where launch_key = $launch_key
