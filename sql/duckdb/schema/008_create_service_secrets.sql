-- Secrets the service makes for itself on first use (the key that signs sign-in sessions), so
-- they survive restarts. Not part of backups: a restored database makes its own.
create table if not exists service_secrets (
    name varchar primary key,
    value varchar not null,
    created_at timestamp not null
)
