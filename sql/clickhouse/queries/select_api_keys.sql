-- Every key (never the secret): key_id, name, scope, key_hash, created_at, revoked_at, origins.
-- A key as it stands: its first revocation row if it has one, else its creation row.
select key_id, name, scope, key_hash, created_at, revoked_at, origins
from (
    select key_id, name, scope, key_hash, created_at, revoked_at, origins
    from api_keys
    order by revoked_at is null, _block_number
    limit 1 by key_id
)
order by created_at, key_id
