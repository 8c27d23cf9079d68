-- Stores a new key's hash. Parameters: $key_id, $name, $scope, $key_hash, $created_at, $origins.
insert into api_keys (key_id, name, scope, key_hash, created_at, origins)
values ($key_id, $name, $scope, $key_hash, $created_at, $origins)
