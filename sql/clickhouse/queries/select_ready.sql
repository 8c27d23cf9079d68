-- Readiness: the database answers a read.
select 1 as ready
