-- Records a launch's decision as the next of its decisions (never an update).
-- Parameters: $launch_key, $decision, $reason, $decided_by, $follow_up, $decided_at, $evidence
-- (JSON text).
-- Returns: the new decision_id.
with next_decision as (
    select coalesce(max(decision_id), 0) + 1 as decision_id
    from decisions
    where launch_key = $launch_key
)

insert into decisions
select $launch_key, decision_id, $decision, $reason, $decided_by, $follow_up, $decided_at, $evidence
from next_decision
returning decision_id
