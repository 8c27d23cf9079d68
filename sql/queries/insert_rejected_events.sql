-- Records refused events; a resent identical refusal is kept once.
-- Reads the registered Arrow table staged_rejected.
insert into rejected_events
select * from staged_rejected
on conflict do nothing
