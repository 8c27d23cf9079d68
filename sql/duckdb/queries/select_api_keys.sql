-- Every key (never the secret): key_id, name, scope, key_hash, created_at, revoked_at, origins.
select key_id, name, scope, key_hash, created_at, revoked_at, origins
from api_keys
order by created_at, key_id
