"""The Arrow schemas of what the writer stores (events, refused events, identity links), and
event rows as an Arrow table.

Requests' rows become Arrow in the thread that parsed them (`rows_table`), so the single writer,
the service's bottleneck, spends its time in the database rather than converting Python values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from app.ingest import EVENT_COLUMNS, EventRow

_TS = pa.timestamp("us")
_TIMES = {"original_timestamp", "sent_at", "received_at", "occurred_at"}
EVENTS_SCHEMA = pa.schema(
    [
        (name, _TS if name in _TIMES else pa.bool_() if name == "is_clamped" else pa.string())
        for name in EVENT_COLUMNS
    ]
)
REJECTED_SCHEMA = pa.schema(
    [
        ("rejected_id", pa.string()),
        ("source", pa.string()),
        ("received_at", _TS),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("payload", pa.string()),
    ]
)
LINKS_SCHEMA = pa.schema([("anonymous_id", pa.string()), ("user_id", pa.string()), ("linked_at", _TS)])


def rows_table(rows: Sequence[EventRow]) -> pa.Table:
    """Event rows as an Arrow table in events-table column order."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in EVENT_COLUMNS]
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, EVENTS_SCHEMA, strict=True)],
        schema=EVENTS_SCHEMA,
    )
