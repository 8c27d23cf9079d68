-- Events refused one by one, with why and their raw payload, so nothing sent vanishes silently.
-- rejected_id hashes source, reason and payload: a resent bad event is kept once (read FINAL).
create table if not exists rejected_events (
    rejected_id String,
    source String,
    received_at DateTime64(6, 'UTC'),
    reason String,
    detail String,
    payload String,
    keep_first UInt64 materialized 18446744073709551615 - toUInt64(toUnixTimestamp64Micro(received_at))
)
engine = ReplacingMergeTree(keep_first)
order by rejected_id
settings non_replicated_deduplication_window = 1000, fsync_after_insert = 1, fsync_part_directory = 1
