-- Where each launch version came from: 'git' (`landed launch apply` from spec files), 'editor'
-- (the browser's launch editor), NULL (the API, or a version recorded before this column).
-- A launch whose latest version came from files is managed from git: the editor shows it
-- read-only. Idempotent, and an existing database keeps its rows (source NULL).
alter table launch_versions add column if not exists source varchar
