-- The live keys with id or name {key}, every column (a revocation copies the key's row).
-- Parameters: key. Returns: key_id, name, scope, key_hash, created_at, origins.
select key_id, name, scope, key_hash, created_at, origins
from (
    select key_id, name, scope, key_hash, created_at, revoked_at, origins
    from api_keys
    where key_id in (select key_id from api_keys where key_id = {key:String} or name = {key:String})
    order by revoked_at is null, _block_number
    limit 1 by key_id
)
where revoked_at is null
order by created_at, key_id
