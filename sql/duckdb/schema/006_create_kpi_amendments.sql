-- KPI changes made after launch: what changed, from what to what, when, by whom and why.
create table if not exists kpi_amendments (
    launch_key varchar not null,
    amendment_id integer not null,
    kpi_id varchar not null,
    field varchar not null,
    old_value json,
    new_value json,
    amended_at timestamp not null,
    amended_by varchar not null,
    reason varchar not null,
    primary key (launch_key, amendment_id, kpi_id, field)
)
