"""The ClickHouse event store's reads: the report's inputs (activity, signals, traits) and the
editor's suggestions, from sql/clickhouse/queries/, each returning exactly the columns, types
and values the DuckDB store's namesake returns (app/storage/duckdb_events.py).

Events are read FINAL (one row per (source, message_id) before their merge), identity links
resolved to the one in force per anonymousId, and JSON values read as DuckDB's
json_extract_string reads them (see select_launch_signals.sql). Every result is cast to the
Arrow schema the DuckDB store returns, so the pipelines cannot tell the backends apart. Every
ClickHouse error leaves as StorageUnavailable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from app.storage.clickhouse_database import ClickHouseDatabase
from app.storage.duckdb_events import json_pointer
from app.storage.translate import translates_errors
from pipelines.plan import ReportPlan

_TS = pa.timestamp("us")
# The DuckDB store's result schemas (DuckDB names a list's item `l`).
ACTIVITY_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("is_identified", pa.bool_()),
        ("first_event_at", _TS),
        ("last_event_before", _TS),
        ("active_days", pa.string()),
    ]
)
SIGNALS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("is_identified", pa.bool_()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("occurred_at", _TS),
        ("props", pa.list_(pa.field("l", pa.string()))),
        ("channel", pa.string()),
    ]
)
TRAITS_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("occurred_at", _TS), ("trait", pa.string()), ("value", pa.string())]
)


class ClickHouseReads:
    """Mixed into ClickHouseEventStore: every read of the EventStore protocol."""

    database: ClickHouseDatabase
    # (data_version, names) of the last trait_keys read.
    _trait_keys: tuple[int, list[str]] | None = None

    @property
    def data_version(self) -> int:  # pragma: no cover - the store defines it
        raise NotImplementedError

    # -- report inputs -----------------------------------------------------------------------

    @translates_errors
    def launch_activity(self, plan: ReportPlan) -> pa.Table:
        """One row per canonical user with an event in the plan's span: is_identified, the
        first event at or after the launch, the last one before it, and the window's UTC days
        as a string of '0'/'1' (see the query's header)."""
        span = plan.span
        table = self.database.arrow(
            "select_launch_activity",
            {
                "start": span.lookback,
                "launched": span.start,
                "end": span.end,
                "days": max(1, plan.day_count),
                "identified_only": plan.identified_only,
            },
        )
        return _conform(table, ACTIVITY_SCHEMA)

    @translates_errors
    def launch_signals(self, plan: ReportPlan) -> pa.Table:
        """Candidate signal events in the plan's span with the property values its matchers
        test, in the plan's order; with identified_only, only those of users known by a userId."""
        pointers = [json_pointer(p) for p in plan.property_names]
        table = self.database.arrow(
            "select_launch_signals",
            {
                "start": plan.span.lookback,
                "end": plan.span.end,
                "event_names": list(plan.event_names),
                "any_types": list(plan.matcher_types),
                "pointers": pointers,
                "channel_pointer": json_pointer(plan.channel_property),
                "identified_only": plan.identified_only,
            },
        )
        return _conform(_null_lists(table, "props", len(pointers)), SIGNALS_SCHEMA)

    @translates_errors
    def launch_traits(self, plan: ReportPlan) -> pa.Table:
        """Every value of the plan's traits seen before its span's end, per canonical user."""
        table = self.database.arrow(
            "select_launch_traits",
            {
                "end": plan.span.end,
                "trait_names": list(plan.trait_names),
                "trait_pointers": [json_pointer(t) for t in plan.trait_names],
            },
        )
        return _conform(table, TRAITS_SCHEMA)

    # -- the editor's suggestions --------------------------------------------------------------

    @translates_errors
    def event_names(self, start: datetime, end: datetime) -> list[str]:
        """Distinct event (and page/screen) names seen in [start, end)."""
        return [str(r[0]) for r in self.database.rows("select_event_names", {"start": start, "end": end})]

    @translates_errors
    def event_properties(
        self, event: str, start: datetime, end: datetime
    ) -> list[tuple[str, str | None, int]]:
        """(property, value, events) of events named `event` in [start, end), most common first."""
        rows = self.database.rows("select_event_properties", {"event": event, "start": start, "end": end})
        return [(str(p), None if v is None else str(v), int(n)) for p, v, n in rows]

    @translates_errors
    def trait_values(self, trait: str) -> list[tuple[str, int]]:
        """(value, users) of one trait, most common first."""
        rows = self.database.rows("select_trait_values", {"trait": trait})
        return [(str(v), int(n)) for v, n in rows]

    @translates_errors
    def trait_keys(self) -> list[str]:
        """Trait names seen on events, most common first (cached until new events arrive)."""
        version = self.data_version
        cached = self._trait_keys
        if cached is None or cached[0] != version:
            names = [str(r[0]) for r in self.database.rows("select_trait_keys")]
            self._trait_keys = (version, names)
            return names
        return list(cached[1])


def _null_lists(table: pa.Table, column: str, width: int) -> pa.Table:
    """`table` with every list of `column` that is not `width` long made null: ClickHouse has no
    null arrays, so the query marks a null list with one value too many."""
    lists = table.column(column).combine_chunks()
    if len(lists) == 0:
        return table
    wrong = pc.not_equal(pc.list_value_length(lists), width)
    if not pc.any(wrong).as_py():
        return table
    empty = pa.nulls(len(lists), lists.type)
    return table.set_column(table.schema.get_field_index(column), column, pc.if_else(wrong, empty, lists))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table`'s columns, by name, cast to `schema` (the DuckDB store's types)."""
    columns: list[Any] = [table.column(field.name).cast(field.type) for field in schema]
    return pa.Table.from_arrays(columns, schema=schema)
