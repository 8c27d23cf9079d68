-- The value of one service secret. Parameters: $name.
select value from service_secrets where name = $name
