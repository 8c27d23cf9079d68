-- What a review decided for a launch, why, who, an optional follow-up launch, and the evidence
-- as it stood (JSON). Never edited: a later decision supersedes. The DuckDB table's columns in
-- its order, then the claim token: decision n of a launch is inserted with a deduplication
-- token of (launch_key, n), and the first row of (launch_key, decision_id) by _block_number is
-- the decision; a process that lost the number takes the next one. claim '': a restored row.
create table if not exists decisions (
    launch_key String,
    decision_id Int32,
    decision String,
    reason String,
    decided_by String,
    follow_up Nullable(String),
    decided_at DateTime64(6, 'UTC'),
    evidence String,
    claim String default ''
)
engine = MergeTree
order by (launch_key, decision_id)
settings enable_block_number_column = 1, non_replicated_deduplication_window = 1000,
    fsync_after_insert = 1, fsync_part_directory = 1
