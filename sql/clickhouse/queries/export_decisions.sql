-- Backup: every decision (the first row inserted of each number), with the DuckDB table's
-- columns in its order.
select launch_key, decision_id, decision, reason, decided_by, follow_up, decided_at, evidence
from decisions
order by _block_number
limit 1 by launch_key, decision_id
