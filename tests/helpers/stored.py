"""What a test reads back from storage on either backend, and what it opens beside the test's
storage: the stored events, links and refusals through `Storage.rows` (plain SQL both engines
run), another empty storage on the same backend, and a write fault the backend translates."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
from pydantic import SecretStr

from app.settings import Settings
from app.storage import Storage
from app.storage.clickhouse_database import ClickHouseDatabase, parse_clickhouse_url

EVENT_COLUMNS = (
    "source, message_id, type, event, user_id, anonymous_id, previous_id, group_id, properties, traits, "
    "context, original_timestamp, sent_at, received_at, occurred_at, is_clamped, api"
)


def stored_events(storage: Storage, where: str = "", params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every stored event (the DuckDB table's columns, in its order), sorted."""
    return storage.rows(f"select {EVENT_COLUMNS} from events {where} order by all", params)


def stored_event_dicts(storage: Storage) -> list[dict[str, Any]]:
    """Every stored event as a dict by column name, sorted by message_id, with the JSON columns
    (properties, traits, context) decoded."""
    names = [name.strip() for name in EVENT_COLUMNS.split(",")]
    rows = [dict(zip(names, row, strict=True)) for row in stored_events(storage)]
    for row in rows:
        for column in ("properties", "traits", "context"):
            row[column] = None if row[column] is None else json.loads(row[column])
    return sorted(rows, key=lambda row: str(row["message_id"]))


def stored_links(storage: Storage) -> list[tuple[Any, ...]]:
    """(anonymous_id, user_id, linked_at) of the link in force per anonymous id, sorted. On
    ClickHouse the table is append-only and an earlier link is appended later (argMin/min pick
    the one in force); on DuckDB each anonymous id has one row."""
    return storage.rows(
        "select anonymous_id, argMin(user_id, linked_at), min(linked_at) from identity_links "
        "group by anonymous_id order by anonymous_id"
    )


def stored_rejected(storage: Storage) -> list[tuple[Any, ...]]:
    """Every stored refusal (the DuckDB table's columns, in its order), sorted."""
    return storage.rows(
        "select rejected_id, source, received_at, reason, detail, payload from rejected_events order by all"
    )


def count_rows(storage: Storage, table: str) -> int:
    """Rows of an event table as the stores read it (distinct events, links in force)."""
    column = "distinct anonymous_id" if table == "identity_links" else "*"
    return int(storage.rows(f"select count({column}) from {table}")[0][0])


def another_settings(settings: Settings, name: str) -> Settings:
    """`settings` for another empty database on the same backend: a DuckDB file `name` beside
    the test's, or a new database in the test process's chDB engine path."""
    folder = Path(settings.db_path).parent
    if settings.storage == "clickhouse":
        assert settings.clickhouse_url is not None
        target = parse_clickhouse_url(settings.clickhouse_url.get_secret_value())
        url = f"chdb://{target.path}?database=t_{uuid.uuid4().hex[:16]}"
        return settings.model_copy(update={"db_path": str(folder / name), "clickhouse_url": SecretStr(url)})
    return settings.model_copy(update={"db_path": str(folder / name)})


def open_another(settings: Settings, name: str) -> Storage:
    """Another empty storage beside the test's (see another_settings); close it with
    `close_dropping`."""
    return Storage.open(another_settings(settings, name))


def close_dropping(storage: Storage) -> None:
    """Closes `storage`, dropping its database if it is a ClickHouse one (a test's leftovers)."""
    storage.close()
    if isinstance(storage.database, ClickHouseDatabase):
        storage.database.drop_database()


def drop_clickhouse_database(url: str) -> None:
    """Drops the database a chDB or ClickHouse URL names (a test's leftovers), without applying
    its schema first as opening a Storage would."""
    import clickhouse_connect

    target = parse_clickhouse_url(url)
    assert target.embedded, "tests drop chDB databases only"
    client = clickhouse_connect.get_client(dsn=f"chdb://{target.path}", database="default")
    try:
        client.command(f"drop database if exists {target.database} sync")
    finally:
        client.close()


def write_fault(backend: str, message: str) -> Exception:
    """An error the backend's store translates into StorageUnavailable, to inject as a fault."""
    if backend == "clickhouse":
        from clickhouse_connect.driver.exceptions import OperationalError

        return OperationalError(message)
    return duckdb.IOException(message)
