"""What the ClickHouse metadata store guarantees beyond one process: two Storage objects on the
same chDB database stand for two Landed replicas of one cluster. Racing each other from threads,
of two edits of one launch exactly one lands and the other is StaleLaunch (decided by the claim
the database kept, not by a lock in this process); a delivery is claimed once; an alert is
raised once; decisions take distinct numbers; both see one service secret; a key made on one
authenticates on the other without a restart, and a revocation reaches the other. Rows written
for a slot after its winner (a claimant past the deduplication window) never change what is
read, before or after merges; and the metadata a backup exports is what DuckDB's would be."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.backup import backup, restore
from app.errors import NotFound, Unauthorized
from app.settings import Settings
from app.storage import AlertChange, LaunchEvaluation, StaleLaunch, Storage, clickhouse_meta
from app.storage.clickhouse_meta import ClickHouseMetaStore

pytestmark = pytest.mark.parametrize("backend", ["clickhouse"], indirect=True)

ROUNDS = 20
KEY = "smart-export"
NOW = datetime(2026, 3, 1, 10, 0, 0, 123456)


@pytest.fixture
def replica(settings: Settings, storage: Storage) -> Iterator[Storage]:
    """A second Storage on the test's ClickHouse database: another Landed process."""
    other = Storage.open(settings)
    yield other
    other.close()


def meta_of(storage: Storage) -> ClickHouseMetaStore:
    assert isinstance(storage.meta, ClickHouseMetaStore)
    return storage.meta


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Runs the calls at the same moment, one thread each; each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes[index] = call()
        except Exception as error:  # the outcome under test
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def spec(label: str) -> str:
    return f'{{"key": "{KEY}", "label": "{label}"}}'


def amendment(amendment_id: int, by: str) -> dict[str, Any]:
    return {
        "amendment_id": amendment_id,
        "kpi_id": "adoption",
        "field": "target",
        "old_value": "0.2",
        "new_value": "0.1",
        "amended_at": NOW,
        "amended_by": by,
        "reason": f"round {amendment_id} by {by}",
    }


def edit(storage: Storage, version: int, by: str) -> Callable[[], None]:
    """A new version of the launch with one amendment, made from version `version`."""
    return lambda: storage.write_launch(
        KEY,
        expected_version=version,
        spec_json=spec(f"{by}{version + 1}"),
        recorded_at=NOW,
        recorded_by=by,
        amendments=[amendment(version, by)],
    )


def assert_one_edit_won_each_round(sides: tuple[Storage, Storage], winners: list[str]) -> None:
    for side in sides:
        versions = side.launch_versions(KEY)
        assert [v.version for v in versions] == list(range(1, len(winners) + 2))
        assert [v.recorded_by for v in versions[1:]] == winners
        assert [v.spec for v in versions[1:]] == [spec(f"{w}{n + 2}") for n, w in enumerate(winners)]
        # Amendments are recorded with the version that won only.
        assert [(a.amendment_id, a.amended_by) for a in side.kpi_amendments(KEY)] == [
            (n + 1, w) for n, w in enumerate(winners)
        ]


# ----------------------------------------------------------------------------- launches


def test_two_processes_editing_one_launch_at_once_never_both_win(storage: Storage, replica: Storage) -> None:
    storage.write_launch(
        KEY, expected_version=0, spec_json=spec("seed1"), recorded_at=NOW, recorded_by="seed"
    )
    winners: list[str] = []
    for version in range(1, ROUNDS + 1):
        outcomes = race(edit(storage, version, "a"), edit(replica, version, "b"))
        assert sorted(type(o).__name__ for o in outcomes) == ["NoneType", "StaleLaunch"], outcomes
        winners.append("a" if outcomes[0] is None else "b")
    assert_one_edit_won_each_round((storage, replica), winners)
    assert storage.launch_keys() == replica.launch_keys() == [KEY]


def test_the_database_decides_between_edits_that_both_passed_their_checks(
    storage: Storage, replica: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both edits read the launch at version v and pass every check before either claims v+1:
    no lock of this process stands between them, so the claim the database kept decides."""
    storage.write_launch(
        KEY, expected_version=0, spec_json=spec("seed1"), recorded_at=NOW, recorded_by="seed"
    )
    both_checked = threading.Barrier(2)
    claims = {"a": 0, "b": 0}
    for who, side in (("a", storage), ("b", replica)):
        meta = meta_of(side)
        original = meta._insert

        def insert(
            table: str, schema: pa.Schema, rows: Any, token: str, *, who: str = who, original: Any = original
        ) -> None:
            if table == "launch_claims":
                claims[who] += 1
                both_checked.wait(timeout=30)
            original(table, schema, rows, token)

        monkeypatch.setattr(meta, "_insert", insert)
    winners: list[str] = []
    for version in range(1, ROUNDS + 1):
        outcomes = race(edit(storage, version, "a"), edit(replica, version, "b"))
        assert sorted(type(o).__name__ for o in outcomes) == ["NoneType", "StaleLaunch"], outcomes
        winners.append("a" if outcomes[0] is None else "b")
    assert claims == {"a": ROUNDS, "b": ROUNDS}  # every loser got as far as claiming
    assert_one_edit_won_each_round((storage, replica), winners)


def test_a_stale_amendment_number_is_refused(storage: Storage) -> None:
    storage.write_launch(
        KEY, expected_version=0, spec_json=spec("seed1"), recorded_at=NOW, recorded_by="seed"
    )
    storage.write_launch(
        KEY,
        expected_version=1,
        spec_json=None,
        recorded_at=NOW,
        recorded_by="a",
        amendments=[amendment(1, "a")],
    )
    with pytest.raises(StaleLaunch):  # made from a reading before amendment 1 was recorded
        storage.write_launch(
            KEY,
            expected_version=1,
            spec_json=None,
            recorded_at=NOW,
            recorded_by="b",
            amendments=[amendment(1, "b")],
        )
    assert [a.amended_by for a in storage.kpi_amendments(KEY)] == ["a"]


def test_rows_written_for_a_slot_after_its_winner_change_nothing(storage: Storage) -> None:
    """A claimant that stalled past the deduplication window stores its claim next to the
    winner's: readers still take the first inserted (by _block_number), before and after the
    parts are merged."""
    storage.write_launch(KEY, expected_version=0, spec_json=spec("first"), recorded_at=NOW, recorded_by="a")
    storage.record_decision(
        KEY, decision="keep", reason="r", decided_by="a", follow_up=None, decided_at=NOW, evidence="{}"
    )
    secret = storage.service_secret("session")
    database = meta_of(storage).database
    version = {"version": 1, "spec": spec("late"), "recorded_at": NOW, "recorded_by": "late", "source": None}
    decision = {"decision": "sunset", "reason": "late", "decided_by": "late", "follow_up": None}
    late = [
        ("launch_versions", {"launch_key": KEY, **version, "seq": 1, "claim": "late"}),
        (
            "launch_claims",
            {"launch_key": KEY, "seq": 1, "claim": "late", "kind": "version", "claimed_at": NOW},
        ),
        (
            "decisions",
            {
                "launch_key": KEY,
                "decision_id": 1,
                **decision,
                "decided_at": NOW,
                "evidence": "{}",
                "claim": "late",
            },
        ),
        ("service_secrets", {"name": "session", "value": "late", "created_at": NOW}),
    ]
    schemas = {
        "launch_versions": clickhouse_meta.LAUNCH_VERSIONS_SCHEMA,
        "launch_claims": clickhouse_meta.LAUNCH_CLAIMS_SCHEMA,
        "decisions": clickhouse_meta.DECISIONS_SCHEMA,
        "service_secrets": clickhouse_meta.SERVICE_SECRETS_SCHEMA,
    }
    for table, row in late:
        database.insert_arrow(
            table, pa.Table.from_pylist([row], schema=schemas[table]), token=f"late-{table}"
        )
        assert storage.rows(f"select count() from {table}") == [(2,)]

    def as_read() -> tuple[Any, ...]:
        return (
            [(v.version, v.spec, v.recorded_by) for v in storage.launch_versions(KEY)],
            [(d.decision_id, d.decision) for d in storage.decisions()],
            storage.service_secret("session"),
        )

    expected = ([(1, spec("first"), "a")], [(1, "keep")], secret)
    assert as_read() == expected
    for table, _ in late:
        database.client().command(f"optimize table {table} final")
    assert as_read() == expected
    # The next change and the next decision take the next numbers.
    storage.write_launch(KEY, expected_version=1, spec_json=spec("second"), recorded_at=NOW, recorded_by="a")
    assert [v.recorded_by for v in storage.launch_versions(KEY)] == ["a", "a"]
    next_id = storage.record_decision(
        KEY, decision="iterate", reason="r", decided_by="a", follow_up=None, decided_at=NOW, evidence="{}"
    )
    assert next_id == 2


# ----------------------------------------------------------------------------- keys


def test_a_key_made_on_one_process_authenticates_on_the_other(storage: Storage, replica: Storage) -> None:
    time.sleep(clickhouse_meta.UNKNOWN_KEY_RELOAD_SECONDS)  # the replica read its keys on opening
    key, secret = storage.create_key("web", "write", origins=["https://app.example.com"])
    found = replica.authenticate(secret, ["write"])
    assert (found.key_id, found.name, found.origins) == (key.key_id, "web", ("https://app.example.com",))
    admin, _ = storage.create_key("po", "admin")
    time.sleep(clickhouse_meta.UNKNOWN_KEY_RELOAD_SECONDS)
    assert replica.authenticate_id(admin.key_id, ["admin"]).name == "po"
    assert [k.key_id for k in replica.list_keys()] == [key.key_id, admin.key_id]


def test_an_unknown_key_reads_the_keys_again_at_most_once_a_second(
    replica: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = meta_of(replica)
    reads: list[float] = []
    original = meta.reload_keys

    def counted() -> None:
        reads.append(time.monotonic())
        original()

    monkeypatch.setattr(meta, "reload_keys", counted)
    time.sleep(clickhouse_meta.UNKNOWN_KEY_RELOAD_SECONDS)
    started = time.monotonic()
    for n in range(20):
        with pytest.raises(Unauthorized):
            replica.authenticate(f"lw_unknown-{n}", ["write"])
    elapsed = time.monotonic() - started
    assert 1 <= len(reads) <= 1 + int(elapsed / clickhouse_meta.UNKNOWN_KEY_RELOAD_SECONDS)


def test_a_revocation_on_one_process_reaches_the_other(
    storage: Storage, replica: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, secret = storage.create_key("web", "write")
    replica.reload_keys()
    assert replica.authenticate(secret, ["write"]).key_id == key.key_id
    outcomes = race(lambda: storage.revoke_key("web"), lambda: replica.revoke_key(key.key_id))
    # Each revoked it, or found it revoked already; of two revocations, one row is kept.
    assert all(o == [key.key_id] or isinstance(o, NotFound) for o in outcomes), outcomes
    assert [key.key_id] in outcomes
    assert storage.rows("select count() from api_keys where revoked_at is not null") == [(1,)]
    monkeypatch.setattr(clickhouse_meta, "KEY_REFRESH_SECONDS", 0.0)
    for side in (storage, replica):
        with pytest.raises(Unauthorized):
            side.authenticate(secret, ["write"])
    revoked = {k.revoked_at for side in (storage, replica) for k in side.list_keys()}
    assert len(revoked) == 1 and None not in revoked  # the first revocation stands on both


# ----------------------------------------------------------------------------- claims of other slots


def test_a_delivery_raced_from_two_processes_is_claimed_once(storage: Storage, replica: Storage) -> None:
    lease = NOW + timedelta(minutes=5)
    later = NOW + timedelta(minutes=2)
    for n in range(ROUNDS):
        subject = f"review:2026-W{n + 10}"
        claim: dict[str, Any] = {"now": NOW, "lease_until": lease}
        outcomes = race(
            partial(storage.claim_delivery, subject, "email", claimed_by="a", **claim),
            partial(replica.claim_delivery, subject, "email", claimed_by="b", **claim),
        )
        assert sorted(outcomes, key=str) == [1, None], outcomes
        holder, claimant, other = (storage, "a", "b") if outcomes[0] == 1 else (replica, "b", "a")
        # The one that lost cannot record a result; the holder's attempt fails, due again later.
        holder.record_delivery_result(
            subject, "email", claimed_by=other, now=NOW, error=None, next_attempt_at=None
        )
        assert [d.status for d in holder.deliveries() if d.subject == subject] == ["sending"]
        retry_at = NOW + timedelta(minutes=1)
        holder.record_delivery_result(
            subject, "email", claimed_by=claimant, now=NOW, error="refused", next_attempt_at=retry_at
        )
        retake: dict[str, Any] = {"now": later, "lease_until": lease, "retry": True}
        retaken = race(
            partial(storage.claim_delivery, subject, "email", claimed_by="a", **retake),
            partial(replica.claim_delivery, subject, "email", claimed_by="b", **retake),
        )
        assert sorted(retaken, key=str) == [2, None], retaken
    for side in (storage, replica):
        rows = [(d.status, d.attempts, d.last_error) for d in side.deliveries()]
        assert rows == [("sending", 2, "refused")] * ROUNDS
        assert side.due_deliveries(later) == []
        assert len(side.due_deliveries(lease + timedelta(seconds=1))) == ROUNDS  # lapsed sends


def test_an_alert_raised_by_two_processes_at_once_is_raised_once(storage: Storage, replica: Storage) -> None:
    for n in range(ROUNDS):
        change = AlertChange(KEY, "silent_signal", f"exposed:{n}", "silent", "no events", NOW)
        evaluation: dict[str, Any] = {
            "raised": [change],
            "evaluations": [LaunchEvaluation(KEY, f'{{"round": {n}}}', NOW)],
        }
        outcomes = race(
            partial(storage.record_alert_evaluation, cleared=[], now=NOW, **evaluation),
            partial(replica.record_alert_evaluation, cleared=[], now=NOW, **evaluation),
        )
        assert sorted(len(o) for o in outcomes) == [0, 1], outcomes
    for side in (storage, replica):
        alerts = side.alerts(KEY)
        assert sorted(a.subject for a in alerts) == sorted(f"exposed:{n}" for n in range(ROUNDS))
        assert {(a.occurrence, a.cleared_at) for a in alerts} == {(1, None)}
        assert side.launch_evaluations() == {KEY: f'{{"round": {ROUNDS - 1}}}'}


def test_decisions_raced_by_two_processes_take_distinct_numbers(storage: Storage, replica: Storage) -> None:
    decision: dict[str, Any] = {
        "decision": "keep",
        "reason": "r",
        "follow_up": None,
        "decided_at": NOW,
        "evidence": "{}",
    }
    taken: list[int] = []
    for _ in range(ROUNDS // 2):
        outcomes = race(
            partial(storage.record_decision, KEY, decided_by="a", **decision),
            partial(replica.record_decision, KEY, decided_by="b", **decision),
        )
        assert all(isinstance(o, int) for o in outcomes), outcomes
        taken += outcomes
    assert sorted(taken) == list(range(1, ROUNDS + 1))
    for side in (storage, replica):
        assert [d.decision_id for d in side.decisions(KEY)] == list(range(1, ROUNDS + 1))


def test_both_processes_get_the_one_service_secret(storage: Storage, replica: Storage) -> None:
    for n in range(ROUNDS):
        name = f"secret-{n}"
        first, second = race(partial(storage.service_secret, name), partial(replica.service_secret, name))
        assert first == second and len(first) >= 40
        assert storage.service_secret(name) == replica.service_secret(name) == first


# ----------------------------------------------------------------------------- the backup's metadata


def meta_history(storage: Storage) -> None:
    """The same changes on either backend, with fixed times and no random values stored in the
    tables compared: versions, a source mark, a deletion and re-creation, amendments,
    deliveries through failure and retry, alerts raised and cleared, evaluations, decisions."""
    later = NOW + timedelta(hours=1)
    storage.write_launch(KEY, expected_version=0, spec_json=spec("v1"), recorded_at=NOW, recorded_by="a")
    storage.write_launch(KEY, expected_version=1, spec_json=spec("v2"), recorded_at=later, recorded_by="b")
    storage.write_launch(
        KEY, expected_version=2, spec_json=None, recorded_at=later, recorded_by="b", source="git"
    )
    storage.write_launch(
        KEY,
        expected_version=2,
        spec_json=None,
        recorded_at=later,
        recorded_by="b",
        amendments=[amendment(1, "b")],
    )
    storage.write_launch("gone", expected_version=0, spec_json=spec("x"), recorded_at=NOW, recorded_by="a")
    storage.write_launch(
        "gone", expected_version=1, spec_json=None, recorded_at=NOW, recorded_by="a", delete=True
    )
    storage.write_launch("again", expected_version=0, spec_json=spec("y1"), recorded_at=NOW, recorded_by="a")
    storage.write_launch(
        "again", expected_version=1, spec_json=None, recorded_at=NOW, recorded_by="a", delete=True
    )
    storage.write_launch(
        "again", expected_version=0, spec_json=spec("y2"), recorded_at=later, recorded_by="c"
    )
    lease = NOW + timedelta(minutes=5)
    assert storage.claim_delivery("review:2026-W10", "email", claimed_by="p", now=NOW, lease_until=lease) == 1
    storage.record_delivery_result(
        "review:2026-W10", "email", claimed_by="p", now=NOW, error="refused", next_attempt_at=later
    )
    assert (
        storage.claim_delivery(
            "review:2026-W10", "email", claimed_by="q", now=later, lease_until=lease, retry=True
        )
        == 2
    )
    storage.record_delivery_result(
        "review:2026-W10", "email", claimed_by="q", now=later, error=None, next_attempt_at=None
    )
    assert (
        storage.claim_delivery("review:2026-W10", "webhook", claimed_by="p", now=NOW, lease_until=lease) == 1
    )
    raised = AlertChange(KEY, "verdict_changed", "kpi:adoption", "off_track", "now off track", NOW)
    silent = AlertChange(KEY, "silent_signal", "exposed:0", "silent", "no events", NOW)
    storage.record_alert_evaluation(
        cleared=[],
        raised=[raised, silent],
        evaluations=[LaunchEvaluation(KEY, '{"launch": "a"}', NOW)],
        now=NOW,
    )
    storage.record_alert_evaluation(
        cleared=[AlertChange(KEY, "silent_signal", "exposed:0", message="events again")],
        raised=[],
        evaluations=[LaunchEvaluation(KEY, '{"launch": "b"}', later), LaunchEvaluation("again", "{}", later)],
        now=later,
    )
    storage.record_alert_evaluation(cleared=[], raised=[silent], evaluations=[], now=later)
    for n, decision in enumerate(("keep", "iterate")):
        storage.record_decision(
            KEY,
            decision=decision,
            reason=f"r{n}",
            decided_by="po",
            follow_up=None,
            decided_at=NOW,
            evidence="{}",
        )


META_TABLES = ("launch_versions", "kpi_amendments", "deliveries", "alerts", "launch_evaluations", "decisions")


def exported(storage: Storage, folder: Path) -> dict[str, list[dict[str, Any]]]:
    folder.mkdir()
    files = {table: folder / f"{table}.parquet" for table in (*META_TABLES, "api_keys")}
    storage.export_tables(files)
    tables = {table: pq.read_table(path) for table, path in files.items()}
    keys = tables.pop("api_keys")
    assert keys.column_names == ["key_id", "name", "scope", "key_hash", "created_at", "revoked_at", "origins"]
    # Key ids, hashes and times are random or the clock's: compare what a key is.
    described = [
        {
            "name": r["name"],
            "scope": r["scope"],
            "revoked": r["revoked_at"] is not None,
            "origins": r["origins"] or [],
        }
        for r in keys.to_pylist()
    ]
    return {
        "api_keys": sorted(described, key=str),
        **{table: sorted(t.to_pylist(), key=str) for table, t in tables.items()},
    }


def test_the_metadata_a_backup_exports_is_what_duckdb_exports(storage: Storage, tmp_path: Path) -> None:
    with Storage(str(tmp_path / "reference.duckdb")) as reference:
        results = {}
        for name, side in (("duckdb", reference), ("clickhouse", storage)):
            meta_history(side)
            side.create_key("web", "write", origins=["https://app.example.com"])
            side.create_key("old", "read")
            side.revoke_key("old")
            results[name] = exported(side, tmp_path / name)
            assert [v.version for v in side.launch_versions("again")] == [1]
            assert side.launch_keys() == ["again", KEY]
    assert results["clickhouse"] == results["duckdb"]
    assert {table: len(rows) for table, rows in results["clickhouse"].items()} == {
        "api_keys": 2,
        "launch_versions": 3,
        "kpi_amendments": 1,
        "deliveries": 2,
        "alerts": 3,
        "launch_evaluations": 2,
        "decisions": 2,
    }


def later_history(storage: Storage) -> None:
    """Changes made after a restore, to rows the restore brought: a new version and amendment,
    a source mark, a deletion, a key revoked, a lapsed send taken again and sent, an alert
    cleared and one still open not raised again, the next decision."""
    later = NOW + timedelta(days=1)
    storage.write_launch(
        KEY,
        expected_version=2,
        spec_json=spec("v3"),
        recorded_at=later,
        recorded_by="d",
        amendments=[amendment(2, "d")],
    )
    storage.write_launch(
        "again", expected_version=1, spec_json=None, recorded_at=later, recorded_by="d", source="editor"
    )
    with pytest.raises(StaleLaunch):
        storage.write_launch(
            "again", expected_version=0, spec_json=spec("y3"), recorded_at=later, recorded_by="d"
        )
    lease = later + timedelta(minutes=5)
    retake = {"claimed_by": "r", "now": later, "lease_until": lease, "retry": True}
    assert storage.claim_delivery("review:2026-W10", "email", **retake) is None  # sent: never again
    assert storage.claim_delivery("review:2026-W10", "webhook", **retake) == 2  # its sender's lease ran out
    storage.record_delivery_result(
        "review:2026-W10", "webhook", claimed_by="r", now=later, error=None, next_attempt_at=None
    )
    storage.record_alert_evaluation(
        cleared=[AlertChange(KEY, "silent_signal", "exposed:0", message="seen")],
        raised=[AlertChange(KEY, "verdict_changed", "kpi:adoption", "on_track", "back on track", later)],
        evaluations=[LaunchEvaluation(KEY, '{"launch": "c"}', later)],
        now=later,
    )
    assert (
        storage.record_decision(
            KEY,
            decision="sunset",
            reason="r",
            decided_by="po",
            follow_up="next",
            decided_at=later,
            evidence='{"a": 1}',
        )
        == 3
    )
    storage.revoke_key("web")


def test_metadata_restored_from_a_duckdb_backup_reads_and_changes_as_in_duckdb(
    storage: Storage, tmp_path: Path
) -> None:
    with Storage(str(tmp_path / "reference.duckdb")) as reference:
        meta_history(reference)
        reference.create_key("web", "write", origins=["https://app.example.com"])
        backup(reference, tmp_path / "backup")
        restore(storage, tmp_path / "backup")
        assert exported(storage, tmp_path / "restored") == exported(reference, tmp_path / "original")
        assert [k.name for k in storage.list_keys()] == ["web"]
        for side in (reference, storage):
            later_history(side)
        assert exported(storage, tmp_path / "restored-later") == exported(
            reference, tmp_path / "original-later"
        )
        for read in (
            lambda s: [s.launch_versions(k) for k in s.launch_keys()],
            lambda s: s.kpi_amendments(KEY),
            lambda s: s.deliveries(),
            lambda s: s.alerts(),
            lambda s: s.decisions(),
            lambda s: s.launch_evaluations(),
        ):
            assert read(storage) == read(reference)
        assert [(k.name, k.revoked_at is not None) for k in storage.list_keys()] == [("web", True)]
