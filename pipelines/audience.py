"""Who belongs to a launch's audience in a period: identity, and traits as of the period start.

Spec section 2: a trait's value for a period [S, E) is the latest value at or before S; failing
that the first value seen in (S, E); failing that the user fails every filter on the trait. The
fallback depends on E, and one report measures several periods sharing a start (the window and
each KPI's by_day window), so the traits are reduced once per start to the one candidate value
that rule can pick (latest at or before S, else earliest after it) with its time, and each
period's rule is an expression over that candidate.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import polars as pl

from pipelines.launch import Audience

NO_VALUE = "(none)"
# Ranks values after the start behind every value before it: no trait history spans this long.
_AFTER_START = timedelta(days=1_000_000)


def trait_column(start: datetime, trait: str) -> str:
    # "|" keeps these apart from the journey's own columns, which never contain it.
    return f"trait|{start.isoformat()}|{trait}"


def trait_states(traits: pl.LazyFrame, *, wanted: Iterable[tuple[datetime, str]]) -> pl.LazyFrame:
    """One row per user with a struct column {value, at} per wanted (start, trait): the
    latest value at or before the start, else the earliest one after it (null if none).

    Values of one trait at the same instant are reduced to the greatest first, so the pick is
    deterministic whatever order the storage returns rows in.
    """
    pairs = sorted(set(wanted))
    names = sorted({name for _, name in pairs})
    at = pl.col("occurred_at")
    # Ranks are plain columns before the group_by: aggregations over precomputed columns stay
    # on Polars' fast path, expressions evaluated per group do not.
    ranks = {
        f"rank|{index}": pl.when(pl.col("trait") == name).then(
            pl.when(at <= start).then(start - at).otherwise(at - start + _AFTER_START)
        )
        for index, (start, name) in enumerate(pairs)
    }
    state = pl.struct(value=pl.col("value"), at=at)
    return (
        traits.filter(pl.col("trait").is_in(names))
        .group_by("user_id", "trait", "occurred_at")
        .agg(pl.col("value").max())
        .with_columns(**ranks)
        .group_by("user_id")
        .agg(
            state.get(pl.col(rank).arg_min()).alias(trait_column(start, name))
            for rank, (start, name) in zip(ranks, pairs, strict=True)
        )
    )


def trait_value(trait: str, *, start: datetime, end: datetime) -> pl.Expr:
    """The trait as of the period [start, end): the candidate if it came by the start or
    inside the period, else null."""
    candidate = pl.col(trait_column(start, trait))
    at = candidate.struct.field("at")
    return pl.when((at <= start) | (at < end)).then(candidate.struct.field("value"))


def segment_value(trait: str, *, start: datetime, end: datetime) -> pl.Expr:
    return trait_value(trait, start=start, end=end).fill_null(NO_VALUE)


def in_audience(audience: Audience, *, start: datetime, end: datetime) -> pl.Expr:
    """True for users in the audience of the period [start, end)."""
    condition = pl.col("is_identified") if audience.identified_only else pl.lit(True)
    for trait, allowed in audience.allowed().items():
        value = trait_value(trait, start=start, end=end)
        condition = condition & value.is_in(allowed).fill_null(False)
    return condition
