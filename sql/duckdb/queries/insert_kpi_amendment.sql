-- Records one changed field of one KPI.
-- Parameters: $launch_key, $amendment_id, $kpi_id, $field, $old_value, $new_value (JSON text),
-- $amended_at, $amended_by, $reason.
insert into kpi_amendments
values ($launch_key, $amendment_id, $kpi_id, $field, $old_value, $new_value, $amended_at, $amended_by, $reason)
