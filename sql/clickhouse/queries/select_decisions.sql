-- Decisions, oldest first: of one launch, or of every launch when launch_key is null (the first
-- row inserted of each number).
-- Parameters: launch_key.
-- Returns: launch_key, decision_id, decision, reason, decided_by, follow_up, decided_at,
-- evidence (JSON text).
select launch_key, decision_id, decision, reason, decided_by, follow_up, decided_at, evidence
from (
    select launch_key, decision_id, decision, reason, decided_by, follow_up, decided_at, evidence
    from decisions
    where {launch_key:Nullable(String)} is null or launch_key = {launch_key:Nullable(String)}
    order by _block_number
    limit 1 by launch_key, decision_id
)
order by launch_key, decision_id
