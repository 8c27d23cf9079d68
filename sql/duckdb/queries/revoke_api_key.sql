-- Revokes a key by id or name. Parameters: $key, $revoked_at. Returns the keys revoked.
update api_keys
set revoked_at = $revoked_at
where (key_id = $key or name = $key) and revoked_at is null
returning key_id
