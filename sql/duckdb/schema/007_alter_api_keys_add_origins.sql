-- Browser write keys may name the web origins allowed to send with them (NULL: any origin).
alter table api_keys add column if not exists origins varchar[]
