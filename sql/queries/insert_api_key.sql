-- Stores a new key's hash. Parameters: $key_id, $name, $scope, $key_hash, $created_at.
insert into api_keys (key_id, name, scope, key_hash, created_at)
values ($key_id, $name, $scope, $key_hash, $created_at)
