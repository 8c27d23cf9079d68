-- Backup and restore: how many rows identity_links holds.
select count(*) from identity_links
