"""Hand-made users on the edges of the metric spec, built around the sample's team-workspaces
launch: each exercises one rule (exposure after use, the launch instant, late identity links,
trait changes at the window's start, skewed clocks, midnight crossings, ...). The reference
tests compare every report number on them with plain SQL; the refresh tests send them late
and out of order."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

TW = datetime(2026, 9, 28, 9)  # team-workspaces' launched_at, which the edge users are built around


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds") + "Z"


class _Events:
    """Segment events in the import format, each with its own messageId; no sentAt unless given,
    so the stored time is the timestamp."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(
        self, kind: str, at: datetime, *, user: str | None = None, anon: str | None = None, **fields: Any
    ) -> None:
        event: dict[str, Any] = {
            "type": kind,
            "messageId": f"edge-{len(self.items):04d}",
            "timestamp": _iso(at),
            "receivedAt": _iso(fields.pop("received", at)),
        }
        if "sent" in fields:
            event["sentAt"] = _iso(fields.pop("sent"))
        if user is not None:
            event["userId"] = user
        if anon is not None:
            event["anonymousId"] = anon
        event.update(fields)
        self.items.append(event)

    def identify(self, user: str, at: datetime, plan: str, anon: str | None = None) -> None:
        self.add("identify", at, user=user, anon=anon, traits={"plan": plan, "country": "NZ"})

    def seen(
        self, user: str, at: datetime, feature: str = "team-workspaces", channel: str | None = "in_app"
    ) -> None:
        properties = {"feature": feature} | ({"channel": channel} if channel else {})
        self.add("track", at, user=user, event="Announcement Viewed", properties=properties)

    def use(self, user: str | None, at: datetime, anon: str | None = None, **fields: Any) -> None:
        self.add(
            "track",
            at,
            user=user,
            anon=anon,
            event="Feature Used",
            properties={"feature": "team-workspaces"},
            **fields,
        )

    def upgrade(self, user: str, at: datetime, to_plan: str = "premium") -> None:
        self.add(
            "track",
            at,
            user=user,
            event="Plan Upgraded",
            properties={"from_plan": "free", "to_plan": to_plan},
        )

    def session(self, user: str | None, at: datetime, anon: str | None = None) -> None:
        self.add("track", at, user=user, anon=anon, event="Session Started", properties={})


def edge_events() -> list[dict[str, Any]]:
    """Users built around team-workspaces (launched TW, window TW + 28 days)."""
    day = timedelta(days=1)
    e = _Events()
    # Uses it without ever being exposed, on two days, then converts: an adopter who repeated
    # and converted, yet is not "tried", so the funnel's steps differ from the metrics' counts.
    e.identify("edge_unexposed", TW - 10 * day, "free")
    e.use("edge_unexposed", TW + 2 * day + timedelta(hours=1))
    e.use("edge_unexposed", TW + 4 * day + timedelta(hours=11))
    e.upgrade("edge_unexposed", TW + 5 * day)
    # Uses it, then sees the email: tried, but not "tried after" the email exposure.
    e.identify("edge_use_then_email", TW - 5 * day, "pro")
    e.use("edge_use_then_email", TW + day + timedelta(hours=1))
    e.seen("edge_use_then_email", TW + 2 * day, channel="email")
    e.use("edge_use_then_email", TW + 3 * day)
    # Sees and uses it at the very launch instant, then upgrades: stays in the free audience.
    e.identify("edge_upgrader", TW - 20 * day, "free")
    e.seen("edge_upgrader", TW)
    e.use("edge_upgrader", TW)
    e.upgrade("edge_upgrader", TW + 4 * day)
    e.identify("edge_upgrader", TW + 4 * day + timedelta(seconds=1), "premium")
    # Anonymous first, identified (with the link and the plan) three days into the window.
    e.session(None, TW + day, anon="edge-anon-late")
    e.identify("edge_late", TW + 3 * day, "pro", anon="edge-anon-late")
    e.use("edge_late", TW + 3 * day + timedelta(hours=1))
    # Premium at the window start, free later: outside a free/pro audience.
    e.identify("edge_premium_then_free", TW - 30 * day, "premium")
    e.identify("edge_premium_then_free", TW + day, "free")
    e.seen("edge_premium_then_free", TW + 2 * day)
    e.use("edge_premium_then_free", TW + 2 * day + timedelta(minutes=5))
    # First plan after the full window: never in the audience.
    e.session("edge_value_after_end", TW + 2 * day)
    e.use("edge_value_after_end", TW + 2 * day + timedelta(minutes=1))
    e.identify("edge_value_after_end", TW + 30 * day, "free")
    # First plan after the mid-window cut but inside the full window.
    e.session("edge_value_after_cut", TW + 2 * day)
    e.identify("edge_value_after_cut", TW + 12 * day, "free")
    # A value exactly at the window start beats an earlier one.
    e.identify("edge_trait_at_start", TW - day, "premium")
    e.identify("edge_trait_at_start", TW, "free")
    e.session("edge_trait_at_start", TW + timedelta(hours=2))
    # The plan only in context.traits of a track event.
    e.add(
        "track",
        TW - 3 * day,
        user="edge_context_traits",
        event="Dashboard Viewed",
        properties={"dashboard": "overview"},
        context={"traits": {"plan": "pro"}},
    )
    e.session("edge_context_traits", TW + 4 * day)
    # Uses a minute apart across midnight UTC (two days), exposed through a campaign source only;
    # then exactly f + 7 days (week 1) and exactly f + 21 days (not week 2).
    first = TW + 5 * day + timedelta(hours=14, minutes=59, seconds=30)
    e.identify("edge_days", TW - 8 * day, "free")
    e.add(
        "page",
        first - timedelta(hours=1),
        user="edge_days",
        name="Feature Page",
        properties={"path": "/new/team-workspaces"},
        context={"campaign": {"source": "social", "medium": "social"}},
    )
    e.use("edge_days", first)
    e.use("edge_days", first + timedelta(minutes=1))
    e.use("edge_days", first + 7 * day)
    e.use("edge_days", first + 21 * day)
    # Exposed while anonymous, linked by alias later.
    e.identify("edge_alias", TW - 2 * day, "free")
    e.add(
        "track",
        TW + 2 * day,
        anon="edge-anon-alias",
        event="Announcement Viewed",
        properties={"feature": "team-workspaces", "channel": "in_app"},
    )
    e.add("alias", TW + 6 * day, user="edge_alias", previousId="edge-anon-alias")
    e.use("edge_alias", TW + 7 * day)
    # Converts before first use: an adopter who did not convert (for conversion_rate).
    e.identify("edge_conv_before_use", TW - 4 * day, "pro")
    e.upgrade("edge_conv_before_use", TW + day)
    e.seen("edge_conv_before_use", TW + day + timedelta(hours=1))
    e.use("edge_conv_before_use", TW + 2 * day)
    # A non-adopter who converts; an adopter who upgrades only to pro.
    e.identify("edge_nonadopter_conv", TW - 4 * day, "free")
    e.upgrade("edge_nonadopter_conv", TW + 3 * day)
    # Two uses on one UTC day (00:30 and 23:30): not repeated.
    e.identify("edge_upgrade_pro", TW - 4 * day, "free")
    e.use("edge_upgrade_pro", TW + 3 * day - timedelta(hours=8, minutes=30))
    e.use("edge_upgrade_pro", TW + 3 * day + timedelta(hours=14, minutes=30))
    e.upgrade("edge_upgrade_pro", TW + 4 * day, to_plan="pro")
    # Only event exactly at the full window's end: not active.
    e.identify("edge_at_end", TW - 10 * day, "free")
    e.session("edge_at_end", TW + 28 * day)
    # A device clock 3 h fast: sent "in the window", really an hour before launch.
    e.identify("edge_skew", TW - 10 * day, "free")
    e.use(
        "edge_skew",
        TW + timedelta(hours=2),
        sent=TW + timedelta(hours=2, seconds=1),
        received=TW - timedelta(hours=1) + timedelta(seconds=1),
    )
    e.session("edge_skew", TW + day)
    # Converts in the pre-launch baseline period.
    e.identify("edge_baseline_conv", TW - 30 * day, "free")
    e.upgrade("edge_baseline_conv", TW - 2 * day)
    e.identify("edge_baseline_conv", TW - 2 * day + timedelta(seconds=1), "premium")
    # Never identified: not in an identified-only audience.
    e.add(
        "track",
        TW + day,
        anon="edge-anon-only",
        event="Feature Used",
        properties={"feature": "team-workspaces"},
    )
    return e.items
