-- Keeps the verdicts a launch had at its latest alert evaluation.
-- Parameters: $launch_key, $verdicts (JSON text), $as_of, $evaluated_at.
insert into launch_evaluations
values ($launch_key, $verdicts, $as_of, $evaluated_at)
on conflict (launch_key) do update
set verdicts = excluded.verdicts, as_of = excluded.as_of, evaluated_at = excluded.evaluated_at
