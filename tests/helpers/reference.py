"""Every report number computed a second way: `tests/reference/reference_metrics.sql`, plain
DuckDB SQL written from the metric spec alone, without reading the pipeline. `reference_params`
turns a launch of the sample's shape into the script's parameters (and refuses any other shape
rather than compute it wrongly); `reference_metrics` runs the script and returns each named
result as rows. tests/test_report_reference.py compares the report with it; the report
benchmark (bench/report.py) uses it as the hand-written baseline.

The script reads the DuckDB tables `events` and `identity_links` (one link per anonymousId).
`reference_connection` gives a connection holding them for either backend: the DuckDB file
itself, or for ClickHouse an in-memory DuckDB loaded with the ClickHouse tables' current rows
by plain SQL of its own (events FINAL, the link in force per anonymousId), so the reference
never runs the store's own queries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from app.queries import schema_statements
from app.storage import Storage
from app.storage.clickhouse_database import ClickHouseDatabase, naive_utc
from app.storage.duckdb_database import DuckDBDatabase
from pipelines.launch import LaunchSpec

SCRIPT = Path(__file__).resolve().parent.parent / "reference" / "reference_metrics.sql"

_PARAM = re.compile(r"\$([a-z_]+)")
_RESULT = re.compile(r"--\s*result:\s*(\w+)")


def statements(script: str) -> list[tuple[str | None, str]]:
    """(result name or None, statement) for each statement of the script, in order."""
    parts = re.split(r";[ \t]*\n", script)
    found: list[tuple[str | None, str]] = []
    for part in parts:
        code = "\n".join(
            line for line in part.splitlines() if line.strip() and not line.strip().startswith("--")
        )
        if not code.strip():
            continue
        match = _RESULT.match(part.strip())
        found.append((match.group(1) if match else None, part.strip()))
    return found


def _sole(values: dict[str, list[str]], name: str) -> str:
    allowed = values.get(name)
    if allowed is None or len(allowed) != 1:
        raise ValueError(f"the reference SQL needs exactly one value for where.{name}")
    return allowed[0]


def reference_params(spec: LaunchSpec, as_of: datetime, segment: str = "plan") -> dict[str, Any]:
    """The script's parameters for a launch of the sample's shape (see the script's header);
    other shapes are refused rather than measured wrongly."""
    exposed = {(m.type, m.event): m.allowed() for m in spec.signals.exposed}
    used = {(m.type, m.event): m.allowed() for m in spec.signals.used}
    converted = {(m.type, m.event): m.allowed() for m in spec.signals.converted}
    shape = (
        set(exposed) == {("track", "Announcement Viewed"), ("page", "Feature Page")}
        and set(used) == {("track", "Feature Used")}
        and converted == {("track", "Plan Upgraded"): {"to_plan": ["premium"]}}
        and spec.audience.identified_only
        and len(spec.audience.where) == 1
    )
    if not shape:
        raise ValueError(f"launch {spec.key!r} is not of the shape the reference SQL computes")
    feature = _sole(used[("track", "Feature Used")], "feature")
    if _sole(exposed[("track", "Announcement Viewed")], "feature") != feature:
        raise ValueError("exposed and used matchers name different features")
    (trait, values), = spec.audience.allowed().items()
    launched = spec.launched_at.astimezone(UTC).replace(tzinfo=None)
    return {
        "launched_at": launched,
        "window_end": launched + timedelta(days=spec.window_days),
        "as_of": as_of.astimezone(UTC).replace(tzinfo=None) if as_of.tzinfo else as_of,
        "feature": feature,
        "feature_path": _sole(exposed[("page", "Feature Page")], "path"),
        "audience_values": values,
        "audience_pointer": json_pointer(trait),
        "segment_pointer": json_pointer(segment),
        "channel_pointer": json_pointer(spec.channel_property),
    }


def json_pointer(name: str) -> str:
    """A property or trait name as an RFC 6901 JSON pointer (the name literally, not a path)."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def reference_metrics(
    conn: duckdb.DuckDBPyConnection, params: dict[str, Any], script: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Runs the script on `conn` (temporary tables only); returns each result as rows."""
    results: dict[str, list[dict[str, Any]]] = {}
    for name, statement in statements(script if script is not None else SCRIPT.read_text()):
        used = {p: params[p] for p in sorted(set(_PARAM.findall(_strip_comments(statement))))}
        cursor = conn.execute(statement, used)
        if name is not None:
            columns = [d[0] for d in cursor.description or []]
            results[name] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return results


def _strip_comments(statement: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in statement.splitlines())


# The ClickHouse tables' rows as the DuckDB tables hold them: each event once (FINAL), and per
# anonymousId the earliest link, the first recorded on a tie.
_CLICKHOUSE_EVENTS = """
select source, message_id, type, event, user_id, anonymous_id, previous_id, group_id,
    properties, traits, context, original_timestamp, sent_at, received_at, occurred_at,
    is_clamped, api
from events final
"""
_CLICKHOUSE_LINKS = """
select anonymous_id, in_force as user_id, earliest as linked_at
from (
    select anonymous_id, argMin(user_id, (linked_at, recorded_at)) as in_force, min(linked_at) as earliest
    from identity_links
    group by anonymous_id
)
"""
_TABLES = ("create_events", "create_identity_links")


def reference_connection(storage: Storage) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose `events` and `identity_links` hold the storage's data: a
    cursor on the DuckDB file, or an in-memory copy of the ClickHouse tables (the caller
    closes it)."""
    database = storage.database
    if isinstance(database, DuckDBDatabase):
        return database.cursor()
    assert isinstance(database, ClickHouseDatabase)
    conn = duckdb.connect()
    for name, statement in schema_statements("duckdb"):
        if name.split("_", 1)[1] in _TABLES:
            conn.execute(statement)
    client = database.client()
    for table, sql in (("events", _CLICKHOUSE_EVENTS), ("identity_links", _CLICKHOUSE_LINKS)):
        rows = naive_utc(client.query_arrow(sql))
        conn.register("copied", rows)
        conn.execute(f"insert into {table} by name select * from copied")
        conn.unregister("copied")
    return conn
