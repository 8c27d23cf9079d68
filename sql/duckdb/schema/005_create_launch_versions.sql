-- Every version of every launch spec, as recorded; the newest undeleted one is current.
create table if not exists launch_versions (
    launch_key varchar not null,
    version integer not null,
    spec json not null,
    recorded_at timestamp not null,
    recorded_by varchar not null,
    primary key (launch_key, version)
)
