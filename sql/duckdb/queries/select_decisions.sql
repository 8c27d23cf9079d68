-- Decisions, oldest first: of one launch, or of every launch when $launch_key is null.
-- Parameters: $launch_key.
-- Returns: launch_key, decision_id, decision, reason, decided_by, follow_up, decided_at,
-- evidence (JSON text).
select launch_key, decision_id, decision, reason, decided_by, follow_up, decided_at, evidence::varchar as evidence
from decisions
where $launch_key is null or launch_key = $launch_key
order by launch_key, decision_id
