-- Keeps a service secret unless one of that name exists. Parameters: $name, $value, $created_at.
insert into service_secrets (name, value, created_at)
values ($name, $value, $created_at)
on conflict (name) do nothing
