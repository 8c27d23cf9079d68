#!/usr/bin/env python3
"""Generate the Landed sample data set: a seeded, deterministic story of one SaaS product.

Landed needs realistic input to be developed, demonstrated and tested against: Segment-spec
usage events with the untidiness real pipelines deliver (anonymous visits linked at sign-up,
skewed device clocks, SDK retries that deliver an event twice, late batches), plus the launch
specs a product owner would write. This script produces both for about three months of a
fictional reporting SaaS (2026-08-24 to 2026-11-20) with three launches whose outcomes are
known in advance: ``smart-export`` misses its KPIs, ``team-workspaces`` lands, and
``ai-summaries`` is still inside its window when the data ends. Because the outcomes are
planted, the service's verdicts can be checked against them.

Generation is vectorised (numpy + polars) and done in fixed-size chunks of users, each with its
own seeded random stream, so the same seed yields byte-identical output, the default data set
is small enough to commit, and ``--users 200000 --format parquet`` stays fast and never holds
all rows in memory.

Usage::

    python data/sample/generate.py --out data/sample                      # ndjson.gz, 3000 users
    python data/sample/generate.py --out /tmp/big --users 200000 --format parquet
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

SECOND = 1_000_000  # all internal times are int64 microseconds since the Unix epoch
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

DATA_START = datetime(2026, 8, 24, tzinfo=UTC)
DATA_END = datetime(2026, 11, 20, tzinfo=UTC)
DEFAULT_SEED = 7
DEFAULT_USERS = 3000
# Fixed (not derived from --users) so a given user gets the same events whatever the total
# size or output format; it also bounds memory for the large parquet runs.
CHUNK_USERS = 25_000

CHANNELS = ("in_app", "email", "social")
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "NL", "JP", "AU")
COUNTRY_WEIGHTS = (0.34, 0.12, 0.11, 0.07, 0.09, 0.07, 0.06, 0.05, 0.05, 0.04)
# Standard-time UTC offsets: only used to put sessions in plausible local working hours.
COUNTRY_UTC_OFFSET_H = (-5.0, 0.0, 1.0, 1.0, 5.5, -3.0, -5.0, 1.0, 9.0, 10.0)
# Offsets of the ~5% of devices whose clock is wrong; the service must undo them using
# receivedAt - (sentAt - timestamp).
CLOCK_SKEWS_US = (3 * HOUR, -40 * MINUTE, 1 * HOUR, -2 * HOUR, 11 * MINUTE, -7 * MINUTE)

# Baseline plan dynamics, independent of any launch; the premium rate gives ~2% of a 28-day
# window's audience upgrading anyway, the yardstick team-workspaces must beat.
P_EXISTING_PLAN = {"free": 0.60, "pro": 0.33, "premium": 0.07}
P_SIGNUP_PRO = 0.18
P_FREE_TO_PRO = 0.10
P_BASE_PREMIUM = 0.06
P_NEW_USER = 0.38
ANON_VISITORS_PER_USER = 0.4
P_ALIAS = 0.004
P_DUPLICATE = 0.005
P_BATCHED = 0.01


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; exact for the whole-second constants used here."""
    return int(moment.timestamp()) * SECOND


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


T0 = to_us(DATA_START)
T_END = to_us(DATA_END)
N_DAYS = (DATA_END - DATA_START).days


# --------------------------------------------------------------------------------------------
# The launches and the story each one must tell
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    id: str
    metric: str
    comparator: str
    target: float
    by_day: int | None = None
    min_sample: int | None = None


@dataclass(frozen=True)
class Amendment:
    kpi: str
    field: str
    old: float
    new: float
    at: str
    by: str
    reason: str


@dataclass(frozen=True)
class LaunchStory:
    """A launch spec plus the behaviour knobs that make its outcome come true."""

    key: str
    name: str
    owner: str
    description: str
    launched_at: datetime
    window_days: int
    defined_at: datetime
    story: str
    announcements: tuple[tuple[str, datetime], ...]
    kpis: tuple[Kpi, ...]
    amendments: tuple[Amendment, ...] = ()
    # Share of users active in the window who see it, and through which channel.
    p_exposed: float = 0.5
    channel_mix: tuple[float, float, float] = (1.0, 0.0, 0.0)  # in_app, email, social
    p_first_session: float = 0.8  # in-app banners show at the first session after launch
    p_feature_page: float = 0.3  # exposed in-app users who click through to the feature page
    p_email_click: float = 0.35
    p_adopt: float = 0.3  # given exposure
    p_adopt_immediate: float = 0.5  # tries it in the same sitting as the exposure
    adopt_delay_days: float = 3.0  # mean delay for the others
    p_repeater: float = 0.5  # adopters who keep using it at all
    repeat_daily: float = 0.2  # daily chance a repeater uses it again
    premium_lift: float = 0.0  # extra chance an adopter upgrades to premium inside the window

    @property
    def window_end(self) -> datetime:
        return self.launched_at + timedelta(days=self.window_days)

    def channel_at(self, channel: str) -> datetime:
        for name, at in self.announcements:
            if name == channel:
                return at
        return self.launched_at


def _at(text: str) -> datetime:
    return parse_iso(text)


LAUNCHES: tuple[LaunchStory, ...] = (
    LaunchStory(
        key="smart-export",
        name="Smart export",
        owner="po@example.com",
        description="One-click export of any report to CSV, Excel or Google Sheets",
        launched_at=_at("2026-09-14T09:00:00Z"),
        window_days=28,
        defined_at=_at("2026-09-09T15:30:00Z"),
        story="missed",
        announcements=(
            ("in_app", _at("2026-09-14T09:00:00Z")),
            ("email", _at("2026-09-15T14:00:00Z")),
            ("social", _at("2026-09-16T16:00:00Z")),
        ),
        kpis=(
            Kpi("reach", "exposure_rate", ">=", 0.5),
            Kpi("adoption", "adoption_rate", ">=", 0.2),
            Kpi("repeat", "repeat_usage_rate", ">=", 0.4),
        ),
        amendments=(
            Amendment(
                kpi="adoption",
                field="target",
                old=0.2,
                new=0.1,
                at="2026-09-28T10:15:00Z",
                by="po@example.com",
                reason="Export is a niche workflow; 20% was set before we saw the segment sizes",
            ),
        ),
        # The failure: a quiet banner few notice, an email few open, and a feature that does
        # not stick; it also does nothing for upgrades (no premium_lift).
        p_exposed=0.125,
        channel_mix=(0.45, 0.40, 0.15),
        p_first_session=0.3,
        p_adopt=0.2,
        p_adopt_immediate=0.6,
        adopt_delay_days=4.0,
        p_repeater=0.12,
        repeat_daily=0.1,
    ),
    LaunchStory(
        key="team-workspaces",
        name="Team workspaces",
        owner="maria@example.com",
        description="Shared workspaces so a whole team can build and review reports together",
        launched_at=_at("2026-09-28T09:00:00Z"),
        window_days=28,
        defined_at=_at("2026-09-23T11:00:00Z"),
        story="landed",
        announcements=(
            ("in_app", _at("2026-09-28T09:00:00Z")),
            ("email", _at("2026-09-29T14:00:00Z")),
        ),
        kpis=(
            Kpi("reach", "exposure_rate", ">=", 0.5),
            Kpi("adoption", "adoption_rate", ">=", 0.2, by_day=14),
            Kpi("premium", "conversion_rate", ">=", 0.03, min_sample=50),
            Kpi("speed", "median_days_to_adopt", "<=", 7),
        ),
        p_exposed=0.72,
        channel_mix=(0.75, 0.25, 0.0),
        p_first_session=0.9,
        p_adopt=0.5,
        p_adopt_immediate=0.55,
        adopt_delay_days=2.0,
        p_repeater=0.85,
        repeat_daily=0.25,
        premium_lift=0.08,
    ),
    LaunchStory(
        key="ai-summaries",
        name="AI summaries",
        owner="sam@example.com",
        description="Plain-language summaries generated for every report",
        launched_at=_at("2026-11-06T09:00:00Z"),
        window_days=28,
        defined_at=_at("2026-11-02T09:45:00Z"),
        story="provisional",
        announcements=(
            ("in_app", _at("2026-11-06T09:00:00Z")),
            ("email", _at("2026-11-10T14:00:00Z")),
        ),
        kpis=(
            Kpi("reach", "exposure_rate", ">=", 0.5),
            Kpi("adoption", "adoption_rate", ">=", 0.2, by_day=14),
            Kpi("try", "notice_to_try_rate", ">=", 0.3),
        ),
        p_exposed=0.6,
        channel_mix=(0.8, 0.2, 0.0),
        p_first_session=0.85,
        p_adopt=0.4,
        p_adopt_immediate=0.5,
        adopt_delay_days=2.5,
        p_repeater=0.6,
        repeat_daily=0.2,
    ),
)


# --------------------------------------------------------------------------------------------
# Event kinds: every row points at one, so constant strings are built once per kind, not per row
# --------------------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class KindTable:
    rows: list[dict[str, Any]] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        key: str,
        type_: str,
        event: str | None = None,
        name: str | None = None,
        properties: dict[str, Any] | None = None,
        traits: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> int:
        code = len(self.rows)
        self.index[key] = code
        self.rows.append(
            {
                "kind": code,
                "type": type_,
                "event": event,
                "name": name,
                "k_properties": None if properties is None else _json(properties),
                "k_traits": None if traits is None else _json(traits),
                "context": _json(context or {}),
            }
        )
        return code

    def __getitem__(self, key: str) -> int:
        return self.index[key]

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            self.rows,
            schema={
                "kind": pl.Int32,
                "type": pl.String,
                "event": pl.String,
                "name": pl.String,
                "k_properties": pl.String,
                "k_traits": pl.String,
                "context": pl.String,
            },
        )


def _campaign(source: str, key: str) -> dict[str, Any]:
    return {"campaign": {"source": source, "medium": source, "name": f"{key}-launch"}}


def build_kinds(launches: Sequence[LaunchStory]) -> tuple[KindTable, list[tuple[int, float]]]:
    """All event kinds, and the weighted mix of what users do inside an ordinary session."""
    k = KindTable()
    k.add("session", "track", "Session Started", properties={})
    mix: list[tuple[int, float]] = []
    for dash, w in (("overview", 0.16), ("revenue", 0.08), ("funnel", 0.06)):
        mix.append((k.add(f"dash:{dash}", "track", "Dashboard Viewed", properties={"dashboard": dash}), w))
    for rtype, w in (("table", 0.14), ("chart", 0.12), ("cohort", 0.05)):
        mix.append((k.add(f"rview:{rtype}", "track", "Report Viewed", properties={"report_type": rtype}), w))
    for rtype, w in (("table", 0.04), ("chart", 0.04)):
        mix.append((k.add(f"rnew:{rtype}", "track", "Report Created", properties={"report_type": rtype}), w))
    for via, w in (("link", 0.02), ("slack", 0.015), ("email", 0.01)):
        mix.append((k.add(f"share:{via}", "track", "Report Shared", properties={"via": via}), w))
    # Established features also emit "Feature Used", so matchers have to filter on `feature`.
    for feat, w in (("alerts", 0.03), ("filters", 0.04)):
        mix.append((k.add(f"use:{feat}", "track", "Feature Used", properties={"feature": feat}), w))
    for page, path, w in (
        ("Dashboard", "/dashboard", 0.12),
        ("Reports", "/reports", 0.07),
        ("Settings", "/settings", 0.025),
    ):
        mix.append((k.add(f"page:{page}", "page", name=page, properties={"path": path}), w))
    for page, path in (
        ("Home", "/"),
        ("Pricing", "/pricing"),
        ("Features", "/features"),
        ("Sign Up", "/signup"),
    ):
        k.add(f"anon:{page}", "page", name=page, properties={"path": path})
    k.add("page:Billing", "page", name="Billing", properties={"path": "/settings/billing"})
    k.add("identify", "identify")
    k.add("alias", "alias")
    for old, new in (("free", "pro"), ("free", "premium"), ("pro", "premium")):
        k.add(f"upgrade:{old}:{new}", "track", "Plan Upgraded", properties={"from_plan": old, "to_plan": new})
    for plan in ("pro", "premium"):
        k.add(f"identify:{plan}", "identify", traits={"plan": plan})
    for launch in launches:
        key = launch.key
        k.add(
            f"{key}:ann:in_app",
            "track",
            "Announcement Viewed",
            properties={"feature": key, "channel": "in_app"},
        )
        k.add(
            f"{key}:ann:email",
            "track",
            "Announcement Viewed",
            properties={"feature": key, "channel": "email"},
            context=_campaign("email", key),
        )
        k.add(
            f"{key}:ann:social",
            "track",
            "Announcement Viewed",
            properties={"feature": key, "channel": "social"},
            context=_campaign("social", key),
        )
        k.add(
            f"{key}:email_click",
            "track",
            "Email Clicked",
            properties={"feature": key},
            context=_campaign("email", key),
        )
        page_props = {"path": f"/new/{key}"}
        k.add(f"{key}:page", "page", name="Feature Page", properties=page_props)
        k.add(
            f"{key}:page:email",
            "page",
            name="Feature Page",
            properties=page_props,
            context=_campaign("email", key),
        )
        k.add(
            f"{key}:page:social",
            "page",
            name="Feature Page",
            properties=page_props,
            context=_campaign("social", key),
        )
        k.add(f"{key}:use", "track", "Feature Used", properties={"feature": key})
    total = sum(w for _, w in mix)
    return k, [(code, w / total) for code, w in mix]


# --------------------------------------------------------------------------------------------
# Vectorised helpers
# --------------------------------------------------------------------------------------------


def uuid4_strings(rng: np.random.Generator, n: int) -> pl.Series:
    """RFC 4122 version-4 UUIDs drawn from the seeded stream, formatted without a Python loop."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    arrow = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw.tobytes())])
    hexed = pl.Series("hex", pl.from_arrow(arrow)).bin.encode("hex")
    return pl.select(
        pl.concat_str(
            [
                hexed.str.slice(0, 8),
                hexed.str.slice(8, 4),
                hexed.str.slice(12, 4),
                hexed.str.slice(16, 4),
                hexed.str.slice(20, 12),
            ],
            separator="-",
        )
    ).to_series()


def group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group of a flat array laid out as consecutive groups."""
    if len(values) == 0:
        return values.copy()
    total = np.cumsum(values)
    starts = np.cumsum(counts) - counts
    before = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0)
    result: np.ndarray = total - np.repeat(before, counts)
    return result


def pick_per_user(
    users: np.ndarray, candidates: np.ndarray, rng: np.random.Generator, n_users: int
) -> np.ndarray:
    """For each user, the position of one random candidate row (or -1); `users` is per row."""
    chosen = np.full(n_users, -1, dtype=np.int64)
    idx = np.flatnonzero(candidates)
    if len(idx) == 0:
        return chosen
    order = np.lexsort((rng.random(len(idx)), users[idx]))
    ordered = idx[order]
    uniq, first = np.unique(users[ordered], return_index=True)
    chosen[uniq] = ordered[first]
    return chosen


def first_per_user(users: np.ndarray, candidates: np.ndarray, n_users: int) -> np.ndarray:
    """Position of each user's first candidate row (rows must be sorted by user, then time)."""
    chosen = np.full(n_users, -1, dtype=np.int64)
    idx = np.flatnonzero(candidates)
    uniq, first = np.unique(users[idx], return_index=True)
    chosen[uniq] = idx[first]
    return chosen


def day_factor(days: np.ndarray) -> np.ndarray:
    """Weekends are quieter for a B2B tool. DATA_START is a Monday."""
    weekday = (days + DATA_START.weekday()) % 7
    return np.where(weekday >= 5, 0.4, 1.0)


def local_time_on_day(days: np.ndarray, utc_offset_h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A UTC instant on each given day, during the user's local working-ish hours."""
    hour = np.clip(rng.normal(13.5, 3.0, len(days)), 6.5, 23.5)
    result: np.ndarray = T0 + days.astype(np.int64) * DAY + ((hour - utc_offset_h) * HOUR).astype(np.int64)
    return result


# --------------------------------------------------------------------------------------------
# One chunk of users
# --------------------------------------------------------------------------------------------


@dataclass
class Parts:
    """Rows under construction: columns are user (-1 none), device (anonymousId index, -1 none),
    alias previous device, time, kind, and variable traits JSON (identify at first sight only)."""

    frames: list[pl.DataFrame] = field(default_factory=list)

    def add(
        self,
        t: np.ndarray,
        kind: np.ndarray | int,
        user: np.ndarray | None = None,
        device: np.ndarray | None = None,
        prev_device: np.ndarray | None = None,
        traits: pl.Series | None = None,
    ) -> None:
        n = len(t)
        if n == 0:
            return

        def col(values: np.ndarray | None) -> np.ndarray:
            return np.full(n, -1, dtype=np.int32) if values is None else values.astype(np.int32)

        kinds = np.full(n, kind, dtype=np.int32) if isinstance(kind, int) else kind.astype(np.int32)
        frame = pl.DataFrame(
            {"u": col(user), "a": col(device), "pa": col(prev_device), "t": t.astype(np.int64), "kind": kinds}
        )
        frame = frame.with_columns(
            traits.alias("v_traits")
            if traits is not None
            else pl.lit(None, dtype=pl.String).alias("v_traits")
        )
        self.frames.append(frame)


@dataclass
class Users:
    n: int
    offset: int
    is_new: np.ndarray
    start_day: np.ndarray
    end_day: np.ndarray
    activity: np.ndarray
    country: np.ndarray
    utc_offset_h: np.ndarray
    plan0: np.ndarray  # 0 free, 1 pro, 2 premium
    created_at: np.ndarray
    skew: np.ndarray


def make_users(rng: np.random.Generator, n: int, offset: int) -> Users:
    is_new = rng.random(n) < P_NEW_USER
    # Sign-ups accelerate over the period (a growing product): density rises towards the end.
    signup_day = np.floor(N_DAYS * rng.random(n) ** 0.8).astype(np.int64)
    start_day = np.where(is_new, signup_day, 0)
    # Exponential lifetimes give steady churn; new users churn a little faster.
    end_day = start_day + rng.exponential(np.where(is_new, 80.0, 110.0)).astype(np.int64) + 1
    activity = rng.beta(2.0, 6.5, n)
    country = rng.choice(len(COUNTRIES), size=n, p=np.array(COUNTRY_WEIGHTS) / sum(COUNTRY_WEIGHTS))
    utc_offset_h = np.array(COUNTRY_UTC_OFFSET_H)[country]
    existing_plan = rng.choice(3, size=n, p=list(P_EXISTING_PLAN.values()))
    new_plan = (rng.random(n) < P_SIGNUP_PRO).astype(np.int64)
    plan0 = np.where(is_new, new_plan, existing_plan)
    created_before = T0 - (rng.exponential(200.0, n) * DAY).astype(np.int64) - HOUR
    skewed = rng.random(n) < 0.05
    skew = np.where(skewed, rng.choice(np.array(CLOCK_SKEWS_US, dtype=np.int64), size=n), 0)
    return Users(
        n, offset, is_new, start_day, end_day, activity, country, utc_offset_h, plan0, created_before, skew
    )


@dataclass
class Sessions:
    user: np.ndarray
    t: np.ndarray


def make_sessions(rng: np.random.Generator, users: Users) -> Sessions:
    days = np.arange(N_DAYS)
    within = (days[None, :] >= users.start_day[:, None]) & (days[None, :] < users.end_day[:, None])
    active = (rng.random((users.n, N_DAYS)) < users.activity[:, None] * day_factor(days)[None, :]) & within
    # A sign-up is itself a visit, so new users are always active on their sign-up day.
    new_idx = np.flatnonzero(users.is_new)
    active[new_idx, users.start_day[new_idx]] = True
    u, d = np.nonzero(active)
    extra = rng.random(len(u)) < 0.2  # a second sitting on busy days
    u = np.concatenate((u, u[extra]))
    d = np.concatenate((d, d[extra]))
    t = local_time_on_day(d, users.utc_offset_h[u], rng)
    # Local hours can cross the UTC day; keep the first and last day inside the data range by
    # moving such sittings a day inwards instead of piling them up on the boundary.
    t = np.where(t < T0 + MINUTE, t + DAY, t)
    t = np.where(t > T_END - 2 * HOUR, t - DAY, t)
    order = np.lexsort((t, u))
    return Sessions(u[order].astype(np.int64), t[order])


def session_events(
    rng: np.random.Generator, sessions: Sessions, kinds: KindTable, mix: list[tuple[int, float]], parts: Parts
) -> None:
    parts.add(sessions.t, kinds["session"], user=sessions.user)
    counts = rng.poisson(1.2, len(sessions.t))
    gaps = rng.exponential(75.0 * SECOND, counts.sum()).astype(np.int64) + SECOND
    rows = np.repeat(np.arange(len(sessions.t)), counts)
    t = sessions.t[rows] + group_cumsum(gaps, counts)
    codes = np.array([c for c, _ in mix], dtype=np.int32)
    kind = rng.choice(codes, size=len(rows), p=np.array([w for _, w in mix]))
    parts.add(t, kind, user=sessions.user[rows])


def identity_events(
    rng: np.random.Generator, users: Users, sessions: Sessions, kinds: KindTable, parts: Parts
) -> np.ndarray:
    """Sign-up / first-sight identifies, anonymous pre-login visits and a few aliases.

    Returns each user's first-session time (-1 if never seen)."""
    first = first_per_user(sessions.user, np.ones(len(sessions.t), bool), users.n)
    seen = np.flatnonzero(first >= 0)
    first_t = np.full(users.n, -1, dtype=np.int64)
    first_t[seen] = sessions.t[first[seen]]
    new = users.is_new[seen]
    created = np.where(new, first_t[seen], users.created_at[seen])
    gid = seen + users.offset
    traits = pl.select(
        pl.concat_str(
            [
                pl.lit('{"plan":"'),
                pl.Series(np.array(["free", "pro", "premium"])[users.plan0[seen]]),
                pl.lit('","country":"'),
                pl.Series(np.array(COUNTRIES)[users.country[seen]]),
                pl.lit('","email":"user'),
                pl.Series(gid).cast(pl.String).str.zfill(7),
                pl.lit('@example.com","created_at":"'),
                pl.Series(created // 1000 * 1000)
                .cast(pl.Datetime("us", "UTC"))
                .dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                pl.lit('"}'),
            ]
        )
    ).to_series()
    # Sign-up identify carries both ids (this is what links the anonymous history); existing
    # users are simply identified when first seen, as a logged-in app does.
    parts.add(
        first_t[seen] - SECOND, kinds["identify"], user=seen, device=np.where(new, seen, -1), traits=traits
    )

    new_users = seen[new]
    signup_t = first_t[new_users]
    n_visits = 1 + rng.poisson(1.2, len(new_users))
    rows = np.repeat(np.arange(len(new_users)), n_visits)
    visit_t = signup_t[rows] - (rng.exponential(1.5 * DAY, len(rows))).astype(np.int64) - 10 * MINUTE
    anon_pages = np.array([kinds["anon:Home"], kinds["anon:Pricing"], kinds["anon:Features"]], dtype=np.int32)
    keep = visit_t >= T0
    parts.add(visit_t[keep], rng.choice(anon_pages, size=int(keep.sum())), device=new_users[rows][keep])
    parts.add(
        signup_t - (rng.uniform(20, 180, len(new_users)) * SECOND).astype(np.int64),
        kinds["anon:Sign Up"],
        device=new_users,
    )
    aliased = new_users[rng.random(len(new_users)) < P_ALIAS]
    parts.add(first_t[aliased] + 2 * SECOND, kinds["alias"], user=aliased, prev_device=aliased)
    return first_t


def anonymous_visitors(
    rng: np.random.Generator, n_users: int, n_visitors: int, kinds: KindTable, parts: Parts
) -> None:
    """People who look around and never sign up; their devices follow the users' devices."""
    device = n_users + np.arange(n_visitors)
    n_pages = 1 + rng.poisson(0.8, n_visitors)
    rows = np.repeat(np.arange(n_visitors), n_pages)
    day = rng.integers(0, N_DAYS, n_visitors)
    start = local_time_on_day(day, rng.choice(np.array(COUNTRY_UTC_OFFSET_H), n_visitors), rng)
    gaps = rng.exponential(40.0 * SECOND, len(rows)).astype(np.int64)
    t = np.clip(start, T0, T_END - HOUR)[rows] + group_cumsum(gaps, n_pages)
    pages = np.array([kinds["anon:Home"], kinds["anon:Pricing"], kinds["anon:Features"]], dtype=np.int32)
    parts.add(t, rng.choice(pages, size=len(rows), p=[0.5, 0.3, 0.2]), device=device[rows])


def launch_events(
    rng: np.random.Generator,
    launch: LaunchStory,
    users: Users,
    sessions: Sessions,
    kinds: KindTable,
    parts: Parts,
) -> np.ndarray:
    """Exposure, use and repeat use of one launch. Returns lift-driven premium upgrade times."""
    key = launch.key
    n = users.n
    start = to_us(launch.launched_at)
    end = min(to_us(launch.window_end), T_END)
    in_window = (sessions.t >= start) & (sessions.t < end)
    first_s = first_per_user(sessions.user, in_window, n)
    rand_s = pick_per_user(sessions.user, in_window, rng, n)
    active = np.flatnonzero(first_s >= 0)
    exposed = active[rng.random(len(active)) < launch.p_exposed]
    channel = rng.choice(3, size=len(exposed), p=list(launch.channel_mix))
    t_exp = np.full(len(exposed), -1, dtype=np.int64)

    in_app = channel == 0
    at_first = rng.random(len(exposed)) < launch.p_first_session
    s_pick = np.where(at_first, first_s[exposed], rand_s[exposed])
    t_exp[in_app] = sessions.t[s_pick[in_app]] + (rng.uniform(5, 120, int(in_app.sum())) * SECOND).astype(
        np.int64
    )
    # Email opens and social clicks happen on their own schedule after the send / the post.
    for code, channel_name, mean_delay in ((1, "email", 10 * HOUR), (2, "social", 1.5 * DAY)):
        mask = channel == code
        sent = to_us(launch.channel_at(channel_name))
        t_exp[mask] = sent + (rng.exponential(mean_delay, int(mask.sum()))).astype(np.int64) + MINUTE
    ok = t_exp < end
    exposed, channel, t_exp = exposed[ok], channel[ok], t_exp[ok]
    in_app, is_email, is_social = channel == 0, channel == 1, channel == 2

    parts.add(t_exp[in_app], kinds[f"{key}:ann:in_app"], user=exposed[in_app])
    parts.add(t_exp[is_email], kinds[f"{key}:ann:email"], user=exposed[is_email])
    parts.add(t_exp[is_social], kinds[f"{key}:ann:social"], user=exposed[is_social])
    via_page = in_app & (rng.random(len(exposed)) < launch.p_feature_page)
    parts.add(t_exp[via_page] + 20 * SECOND, kinds[f"{key}:page"], user=exposed[via_page])
    clicked = is_email & (rng.random(len(exposed)) < launch.p_email_click)
    parts.add(t_exp[clicked] + 45 * SECOND, kinds[f"{key}:email_click"], user=exposed[clicked])
    parts.add(t_exp[clicked] + 50 * SECOND, kinds[f"{key}:page:email"], user=exposed[clicked])
    parts.add(t_exp[is_social] + 3 * SECOND, kinds[f"{key}:page:social"], user=exposed[is_social])

    adopt = rng.random(len(exposed)) < launch.p_adopt
    immediate = rng.random(len(exposed)) < launch.p_adopt_immediate
    later_day = (
        t_exp + rng.exponential(launch.adopt_delay_days * DAY, len(exposed)).astype(np.int64) - T0
    ) // DAY
    later_t = np.maximum(local_time_on_day(later_day, users.utc_offset_h[exposed], rng), t_exp + HOUR)
    t_use = np.where(
        immediate, t_exp + (rng.uniform(60, 600, len(exposed)) * SECOND).astype(np.int64), later_t
    )
    adopt &= t_use < end
    adopters, t_use, immediate = exposed[adopt], t_use[adopt], immediate[adopt]
    parts.add(t_use, kinds[f"{key}:use"], user=adopters)
    # A later try is its own visit.
    parts.add(t_use[~immediate] - 90 * SECOND, kinds["session"], user=adopters[~immediate])

    # Repeat use: repeaters come back on later days (to the data end; use does not stop when
    # the measurement window does), until they churn.
    repeaters = rng.random(len(adopters)) < launch.p_repeater
    r_users, r_first = adopters[repeaters], (t_use[repeaters] - T0) // DAY
    days = np.arange(N_DAYS)
    alive = (days[None, :] > r_first[:, None]) & (days[None, :] < users.end_day[r_users][:, None])
    again = (rng.random((len(r_users), N_DAYS)) < launch.repeat_daily * day_factor(days)[None, :]) & alive
    ri, rd = np.nonzero(again)
    rt = local_time_on_day(rd, users.utc_offset_h[r_users[ri]], rng)
    keep = rt < T_END - HOUR
    parts.add(rt[keep], kinds["session"], user=r_users[ri][keep])
    parts.add(
        rt[keep] + (rng.uniform(30, 900, int(keep.sum())) * SECOND).astype(np.int64),
        kinds[f"{key}:use"],
        user=r_users[ri][keep],
    )

    lift_t = np.full(n, -1, dtype=np.int64)
    lifted = rng.random(len(adopters)) < launch.premium_lift
    room = end - t_use[lifted] - HOUR
    lt = t_use[lifted] + HOUR + (rng.random(int(lifted.sum())) * np.maximum(room, 0)).astype(np.int64)
    ok = room > 0
    lift_t[adopters[lifted][ok]] = lt[ok]
    return lift_t


def plan_events(
    rng: np.random.Generator,
    users: Users,
    sessions: Sessions,
    lift_t: np.ndarray,
    kinds: KindTable,
    parts: Parts,
) -> None:
    """Upgrades happen during a visit; each is followed by an identify carrying the new plan."""
    n = users.n
    pro_s = pick_per_user(sessions.user, np.ones(len(sessions.t), bool), rng, n)
    prem_s = pick_per_user(sessions.user, np.ones(len(sessions.t), bool), rng, n)
    never = np.int64(np.iinfo(np.int64).max)
    t_pro = np.where(
        (pro_s >= 0) & (users.plan0 == 0) & (rng.random(n) < P_FREE_TO_PRO),
        sessions.t[pro_s] + 3 * MINUTE,
        never,
    )
    t_prem = np.where(
        (prem_s >= 0) & (users.plan0 < 2) & (rng.random(n) < P_BASE_PREMIUM),
        sessions.t[prem_s] + 4 * MINUTE,
        never,
    )
    t_prem = np.where(
        (lift_t >= 0) & (users.plan0 < 2), np.minimum(t_prem, np.where(lift_t >= 0, lift_t, never)), t_prem
    )
    t_prem = np.where(t_prem < T_END - MINUTE, t_prem, never)
    t_pro = np.where((t_pro < t_prem) & (t_pro < T_END - MINUTE), t_pro, never)

    to_pro = np.flatnonzero(t_pro < never)
    parts.add(t_pro[to_pro] - 20 * SECOND, kinds["page:Billing"], user=to_pro)
    parts.add(t_pro[to_pro], kinds["upgrade:free:pro"], user=to_pro)
    parts.add(t_pro[to_pro] + SECOND, kinds["identify:pro"], user=to_pro)
    to_prem = np.flatnonzero(t_prem < never)
    was_pro = (users.plan0[to_prem] == 1) | (t_pro[to_prem] < never)
    upgrade_kind = np.where(was_pro, kinds["upgrade:pro:premium"], kinds["upgrade:free:premium"])
    parts.add(t_prem[to_prem] - 20 * SECOND, kinds["page:Billing"], user=to_prem)
    parts.add(t_prem[to_prem], upgrade_kind, user=to_prem)
    parts.add(t_prem[to_prem] + SECOND, kinds["identify:premium"], user=to_prem)


def delivery_times(
    rng: np.random.Generator, t: np.ndarray, skew: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Client timestamp/sentAt (both carry the device's clock error) and server receivedAt."""
    n = len(t)
    batched = rng.random(n) < P_BATCHED  # offline devices flush a queue much later
    send = np.where(batched, rng.uniform(60, 6 * 3600, n), rng.exponential(1.5, n) + 0.05)
    net = rng.exponential(0.15, n) + 0.03
    ms = 1000
    send_us = (send * 1000).astype(np.int64) * ms
    net_us = (net * 1000).astype(np.int64) * ms
    return t + skew, t + send_us + skew, t + send_us + net_us


def generate_chunk(
    seed: int,
    chunk: int,
    offset: int,
    n: int,
    launches: Sequence[LaunchStory],
    kinds: KindTable,
    mix: list[tuple[int, float]],
) -> pl.DataFrame:
    """All events of users [offset, offset + n) and their share of anonymous visitors."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk]))
    users = make_users(rng, n, offset)
    sessions = make_sessions(rng, users)
    parts = Parts()
    session_events(rng, sessions, kinds, mix, parts)
    identity_events(rng, users, sessions, kinds, parts)
    n_visitors = round(n * ANON_VISITORS_PER_USER)
    anonymous_visitors(rng, n, n_visitors, kinds, parts)
    lift_t = np.full(n, -1, dtype=np.int64)
    for launch in launches:
        lt = launch_events(rng, launch, users, sessions, kinds, parts)
        lift_t = np.where(lt >= 0, lt, lift_t)
    plan_events(rng, users, sessions, lift_t, kinds, parts)

    rows = pl.concat(parts.frames, how="vertical")
    # Millisecond precision throughout, so ndjson and parquet carry identical instants.
    rows = rows.with_columns(pl.col("t") // 1000 * 1000).filter((pl.col("t") >= T0) & (pl.col("t") < T_END))
    t = rows["t"].to_numpy()
    u = rows["u"].to_numpy()
    a = rows["a"].to_numpy()
    device_skew = np.concatenate((users.skew, np.zeros(n_visitors, dtype=np.int64)))
    skew = device_skew[np.where(u >= 0, u, np.maximum(a, 0))]
    ts, sent, received = delivery_times(rng, t, skew)
    rows = rows.with_columns(
        pl.Series("ts", ts),
        pl.Series("sent", sent),
        pl.Series("recv", received),
        uuid4_strings(rng, len(t)).alias("messageId"),
    ).filter(pl.col("recv") < T_END)  # late batches not yet received by the data end are simply absent

    # SDK retries: the same payload (same messageId, timestamp, sentAt) arrives twice.
    dup = rows.filter(pl.Series(rng.random(rows.height) < P_DUPLICATE))
    dup = dup.with_columns(
        pl.col("recv") + pl.Series((rng.uniform(0.5, 30.0, dup.height) * 1000).astype(np.int64) * 1000)
    )
    rows = pl.concat([rows, dup]).filter(pl.col("recv") < T_END)

    anon_ids = pl.DataFrame(
        {"a": np.arange(n + n_visitors, dtype=np.int32), "anonymousId": uuid4_strings(rng, n + n_visitors)}
    )
    rows = (
        rows.join(kinds.frame(), on="kind", how="left", maintain_order="left")
        .join(anon_ids, on="a", how="left", maintain_order="left")
        .join(
            anon_ids.rename({"a": "pa", "anonymousId": "previousId"}),
            on="pa",
            how="left",
            maintain_order="left",
        )
        .sort(["recv", "messageId"])
    )

    def as_time(column: str) -> pl.Expr:
        return pl.col(column).cast(pl.Datetime("us", "UTC"))

    return rows.select(
        "type",
        "event",
        "name",
        pl.when(pl.col("u") >= 0)
        .then(pl.concat_str([pl.lit("usr_"), (pl.col("u") + offset).cast(pl.String).str.zfill(7)]))
        .alias("userId"),
        "anonymousId",
        "previousId",
        "messageId",
        as_time("ts").alias("timestamp"),
        as_time("sent").alias("sentAt"),
        as_time("recv").alias("receivedAt"),
        pl.col("k_properties").alias("properties"),
        pl.coalesce("v_traits", "k_traits").alias("traits"),
        "context",
    )


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def ndjson_lines(frame: pl.DataFrame) -> str:
    """Segment-shaped JSON lines built column-wise. Every string value comes from the fixed
    vocabulary above, ids and ISO times, none of which needs JSON escaping."""
    fmt = "%Y-%m-%dT%H:%M:%S%.3fZ"

    def opt_str(col: str) -> pl.Expr:
        return (
            pl.when(pl.col(col).is_not_null())
            .then(pl.concat_str([pl.lit(f',"{col}":"'), pl.col(col), pl.lit('"')]))
            .otherwise(pl.lit(""))
        )

    def opt_raw(col: str) -> pl.Expr:
        return (
            pl.when(pl.col(col).is_not_null())
            .then(pl.concat_str([pl.lit(f',"{col}":'), pl.col(col)]))
            .otherwise(pl.lit(""))
        )

    line = pl.concat_str(
        [
            pl.lit('{"type":"'),
            pl.col("type"),
            pl.lit('","messageId":"'),
            pl.col("messageId"),
            pl.lit('","timestamp":"'),
            pl.col("timestamp").dt.strftime(fmt),
            pl.lit('","sentAt":"'),
            pl.col("sentAt").dt.strftime(fmt),
            pl.lit('","receivedAt":"'),
            pl.col("receivedAt").dt.strftime(fmt),
            pl.lit('"'),
            opt_str("userId"),
            opt_str("anonymousId"),
            opt_str("previousId"),
            opt_str("event"),
            opt_str("name"),
            opt_raw("properties"),
            opt_raw("traits"),
            pl.lit(',"context":'),
            pl.col("context"),
            pl.lit("}\n"),
        ]
    )
    text: str = frame.select(line.str.join("")).item()
    return text


def launch_yaml(launch: LaunchStory) -> str:
    """The spec as the product owner first wrote it (amendments live in the manifest)."""
    key = launch.key
    lines = [
        f"key: {key}",
        f"name: {launch.name}",
        f"owner: {launch.owner}",
        f"description: {launch.description}",
        f"launched_at: {iso(launch.launched_at)}",
        f"window_days: {launch.window_days}",
        "audience:",
        "  identified_only: true",
        "  where: {plan: [free, pro]}",
        "signals:",
        "  exposed:",
        f"    - {{event: Announcement Viewed, where: {{feature: {key}}}}}",
        f"    - {{type: page, event: Feature Page, where: {{path: /new/{key}}}}}",
        "  used:",
        f"    - {{event: Feature Used, where: {{feature: {key}}}}}",
        "  converted:",
        "    - {event: Plan Upgraded, where: {to_plan: premium}}",
        "channel_property: channel",
        "announcements:",
        *(f"  - {{channel: {ch}, at: {iso(at)}}}" for ch, at in launch.announcements),
        "kpis:",
    ]
    for kpi in launch.kpis:
        extra = "".join(
            f", {name}: {value}"
            for name, value in (("by_day", kpi.by_day), ("min_sample", kpi.min_sample))
            if value is not None
        )
        lines.append(
            f"  - {{id: {kpi.id}, metric: {kpi.metric}, "
            f'comparator: "{kpi.comparator}", target: {kpi.target}{extra}}}'
        )
    return "\n".join(lines) + "\n"


def manifest(seed: int, n_users: int, launches: Sequence[LaunchStory]) -> dict[str, Any]:
    return {
        "data_start": iso(DATA_START),
        "data_end": iso(DATA_END),
        "seed": seed,
        "users": n_users,
        "launches": {
            launch.key: {
                "defined_at": iso(launch.defined_at),
                "amendments": [vars(a).copy() for a in launch.amendments],
                "story": launch.story,
            }
            for launch in launches
        },
    }


def write_specs(out: Path, seed: int, n_users: int, launches: Sequence[LaunchStory]) -> list[Path]:
    spec_dir = out / "launches"
    spec_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for launch in launches:
        path = spec_dir / f"{launch.key}.yaml"
        path.write_text(launch_yaml(launch), encoding="utf-8")
        written.append(path)
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest(seed, n_users, launches), indent=2) + "\n", encoding="utf-8")
    written.append(path)
    return written


def iter_chunks(
    seed: int, n_users: int, launches: Sequence[LaunchStory]
) -> Iterator[tuple[int, pl.DataFrame]]:
    kinds, mix = build_kinds(launches)
    for chunk, offset in enumerate(range(0, n_users, CHUNK_USERS)):
        yield (
            chunk,
            generate_chunk(seed, chunk, offset, min(CHUNK_USERS, n_users - offset), launches, kinds, mix),
        )


def generate(
    out: Path,
    n_users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    fmt: str = "ndjson",
    launches: Sequence[LaunchStory] = LAUNCHES,
) -> dict[str, Any]:
    """Write events, launch specs and manifest under `out`; returns summary counts."""
    out.mkdir(parents=True, exist_ok=True)
    files = write_specs(out, seed, n_users, launches)
    n_events = 0
    if fmt == "ndjson":
        path = out / "events.ndjson.gz"
        # mtime=0 and no file name in the header keep the archive byte-identical across runs.
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        ):
            for _, frame in iter_chunks(seed, n_users, launches):
                n_events += frame.height
                gz.write(ndjson_lines(frame).encode("utf-8"))
        files.append(path)
    elif fmt == "parquet":
        for old in out.glob("events-*.parquet"):
            old.unlink()  # a smaller rerun must not leave stale chunks behind
        for chunk, frame in iter_chunks(seed, n_users, launches):
            path = out / f"events-{chunk:05d}.parquet"
            frame.write_parquet(path, compression="zstd", statistics=True)
            n_events += frame.height
            files.append(path)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return {"users": n_users, "events": n_events, "files": files}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output directory")
    parser.add_argument(
        "--users", type=int, default=DEFAULT_USERS, help="identified users (anonymous visitors come on top)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--format", choices=("ndjson", "parquet"), default="ndjson")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    summary = generate(args.out, args.users, args.seed, args.format)
    seconds = time.perf_counter() - started
    event_files = [f for f in summary["files"] if f.name.startswith("events")]
    print(
        f"users={summary['users']} events={summary['events']} files={len(summary['files'])} "
        f"({len(event_files)} event file(s), {sum(f.stat().st_size for f in event_files) / 1e6:.1f} MB) "
        f"seconds={seconds:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
