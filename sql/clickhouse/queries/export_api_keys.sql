-- Backup: every key as it stands, with the DuckDB table's columns in its order.
select key_id, name, scope, key_hash, created_at, revoked_at, origins
from api_keys
order by revoked_at is null, _block_number
limit 1 by key_id
