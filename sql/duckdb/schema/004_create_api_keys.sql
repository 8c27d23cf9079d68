-- Keys are stored as SHA-256 hashes only; the secret is shown once, at creation.
create table if not exists api_keys (
    key_id varchar primary key,
    name varchar not null,
    scope varchar not null,
    key_hash varchar not null unique,
    created_at timestamp not null,
    revoked_at timestamp
)
