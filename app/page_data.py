"""The data of every page: the portfolio's rows, a scorecard's context and the weekly review's
sections, each gathered from reports, launch history and readiness warnings for the pure page
functions in dashboards/ to lay out; the ISO weeks the review is read by; and the review as a
file, Markdown or one self-contained HTML file whose links are absolute, so they work from a
mail client."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote, urlencode

from app import launches
from app.compare import compare_launches, target_hints
from app.decisions import decisions_of, undecided_closed
from app.errors import InvalidInput
from app.launches import LaunchState
from app.reports import ReportService
from app.snapshots import LaunchSnapshot, Snapshots, default_segment
from app.storage import Storage
from dashboards.layout import Freshness
from dashboards.markdown import review_markdown
from dashboards.notes import AlertNote, Attention, DecisionNote, DeliveryNote, KpiNote, UndecidedNote
from dashboards.portfolio import PortfolioRow
from dashboards.review import ReviewSection, review_page
from dashboards.scorecard import HistoryEntry, ScorecardContext
from pipelines.compare import comparison
from pipelines.decisions import Decision
from pipelines.launch import in_supported_range
from pipelines.report_models import Comparison
from pipelines.times import naive_utc

WEEK = timedelta(days=7)
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(week: str) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) UTC of an ISO week such as 2026-W47."""
    match = _ISO_WEEK.match(week)
    if not match:
        raise InvalidInput(f"week {week!r} is not an ISO week", "write it like 2026-W47", code="invalid_week")
    try:
        start = datetime.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        in_supported_range(start + WEEK)
    except (ValueError, OverflowError) as error:
        raise InvalidInput(f"week {week!r} does not exist", str(error), code="invalid_week") from None
    return start, start + WEEK


def current_week(now: datetime) -> str:
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


def scorecard_url(key: str, base_url: str = "") -> str:
    return f"{base_url}/launches/{quote(key)}"


def compare_url(keys: Sequence[str], *, api: bool = False) -> str:
    """The compare page (or, with `api`, its JSON) of the launches `keys`, in that order."""
    return ("/api" if api else "") + "/compare?" + urlencode([("launch", key) for key in keys])


# A "compare with past launches" link sets a launch beside this many launched before it.
COMPARED_PAST_LAUNCHES = 5


def compare_data(
    storage: Storage, reports: ReportService, keys: Sequence[str], *, as_of: datetime
) -> Comparison:
    """The compare page's launches side by side; none picked yet gives an empty comparison,
    and the page says how to pick some."""
    if not keys:
        return comparison([], metrics=[], as_of=as_of)
    return compare_launches(storage, reports, keys, as_of=as_of)


def freshness(snapshots: Sequence[LaunchSnapshot], *, now: datetime, refresh_url: str) -> Freshness | None:
    """When the oldest of the shown snapshots was computed (None when nothing is shown)."""
    if not snapshots:
        return None
    return Freshness(
        computed_at=min(s.computed_at for s in snapshots), shown_at=naive_utc(now), refresh_url=refresh_url
    )


def launch_snapshots(
    storage: Storage, snapshots: Snapshots, *, refresh: bool = False, keys: Sequence[str] | None = None
) -> list[LaunchSnapshot]:
    """The pages' snapshot (default segment) of every launch, or of those named by `keys`;
    with `refresh`, recomputed now unless already current."""
    states = launches.list_launches(storage)
    if keys is not None:
        states = [state for state in states if state.spec.key in keys]
    segment = snapshots.default_segment()
    if refresh:
        return snapshots.refresh_now(states, segment)
    return snapshots.for_launches(states, segment)


def portfolio_rows(shown: Sequence[LaunchSnapshot]) -> list[PortfolioRow]:
    """A portfolio row per launch, from its snapshot: its report now and a week earlier."""
    return [
        PortfolioRow(
            report=snapshot.report,
            previous=snapshot.previous,
            days_since_launch=(snapshot.as_of - snapshot.state.launched_at).days,
            scorecard_url=scorecard_url(snapshot.key),
        )
        for snapshot in shown
    ]


def history_entries(state: LaunchState) -> list[HistoryEntry]:
    return [
        HistoryEntry(at=item.at, by=item.by, kind=item.kind, summary=item.summary, reason=item.reason)
        for item in launches.history(state)
    ]


def scorecard_context(
    storage: Storage,
    reports: ReportService,
    snapshots: Snapshots,
    key: str,
    *,
    as_of: datetime | None,
    segment: str | None,
    segment_metric: str | None,
    refresh: bool = False,
) -> ScorecardContext:
    """A scorecard: as of now from the launch's snapshot (computed ahead), or as of an
    explicit `as_of`, computed for this view."""
    state = launches.load_launch(storage, key)
    traits = snapshots.trait_keys()
    segment = segment or default_segment(traits)
    json_url = f"/api/launches/{quote(key)}/report" + (f"?segment={quote(segment)}" if segment else "")
    if as_of is None:
        now = snapshots.now()
        if refresh:
            (snapshot,) = snapshots.refresh_now([state], segment)
        else:
            snapshot = snapshots.get(state, segment)
        report, warnings, hints = snapshot.report, snapshot.readiness.warnings, snapshot.target_hints
        params = {"segment": segment} if segment else {}
        fresh = freshness([snapshot], now=now, refresh_url=refresh_link(scorecard_url(key), params))
    else:
        report = reports.report_for(state, as_of=as_of, segment=segment)
        warnings = reports.readiness_for(state, as_of=as_of).warnings
        hints = target_hints(storage, reports, key, now=as_of).hints
        fresh = None
    extra = {"segment_metric": segment_metric} if segment_metric else {}
    # The launches that went live before this one, most recent first: its natural peers.
    earlier = sorted(
        (other for other in launches.list_launches(storage) if other.launched_at < state.launched_at),
        key=lambda other: other.launched_at,
        reverse=True,
    )[:COMPARED_PAST_LAUNCHES]
    decisions = decision_notes(storage, key)
    return ScorecardContext(
        report=report,
        history=sorted([*history_entries(state), *decision_history(decisions)], key=lambda entry: entry.at),
        decisions=decisions,
        alerts=alert_notes(storage, key),
        warnings=warnings,
        segment_traits=traits,
        json_url=json_url,
        target_hints=hints,
        compare_url=compare_url([key, *(other.spec.key for other in earlier)]) if earlier else None,
        freshness=fresh,
        **extra,  # type: ignore[arg-type]
    )


def refresh_link(path: str, params: dict[str, str] | None = None) -> str:
    """The page at `path` (with `params`), asking for its numbers to be computed now."""
    return path + "?" + urlencode({**(params or {}), "refresh": "1"})


def review_sections(
    storage: Storage,
    reports: ReportService,
    *,
    week: str,
    now: datetime,
    base_url: str = "",
    snapshots: Sequence[LaunchSnapshot] | None = None,
) -> list[ReviewSection]:
    """One section per launch whose window overlaps the week, as of the week's end (or now).
    `base_url` (the service's address) makes the scorecard links absolute. For the week under
    way, `snapshots` (the pages' results computed ahead) give each launch's numbers, so the
    review shows what the portfolio and scorecards show."""
    start, end = parse_week(week)
    as_of = min(end, now)
    by_key = {s.key: s for s in snapshots or ()} if end > now else {}
    decided: defaultdict[str, list[DecisionNote]] = defaultdict(list)
    for decision in decisions_of(storage):
        if decision.decided_at <= naive_utc(as_of):
            decided[decision.launch_key].append(decision_note(decision))
    sections = []
    for state in launches.list_launches(storage):
        spec = state.spec
        if state.launched_at >= as_of or naive_utc(spec.window_end) <= start:
            continue
        snapshot = by_key.get(spec.key)
        if snapshot is not None:
            sections.append(
                ReviewSection(
                    current=snapshot.report,
                    previous=snapshot.previous,
                    warnings=snapshot.readiness.warnings,
                    previous_warnings=snapshot.previous_readiness.warnings
                    if snapshot.previous_readiness
                    else [],
                    scorecard_url=scorecard_url(spec.key, base_url),
                    decisions=decided[spec.key],
                )
            )
            continue
        previous_as_of = as_of - WEEK
        had_previous = previous_as_of > state.launched_at
        sections.append(
            ReviewSection(
                current=reports.report_for(state, as_of=as_of),
                previous=reports.report_for(state, as_of=previous_as_of) if had_previous else None,
                warnings=reports.readiness_for(state, as_of=as_of).warnings,
                previous_warnings=reports.readiness_for(state, as_of=previous_as_of).warnings
                if had_previous
                else [],
                scorecard_url=scorecard_url(spec.key, base_url),
                decisions=decided[spec.key],
            )
        )
    return sections


def review_export(
    storage: Storage,
    reports: ReportService,
    *,
    fmt: Literal["md", "html"],
    now: datetime,
    week: str | None = None,
    base_url: str = "",
) -> str:
    """The weekly review of `week` (default: the week of `now`) as it stood at `now`: Markdown,
    or one self-contained HTML file (plotly.js inlined) whose links start with `base_url`."""
    now = naive_utc(now)
    week = week or current_week(now)
    sections = review_sections(storage, reports, week=week, now=now, base_url=base_url)
    return review_file(week, sections, fmt=fmt, now=now, base_url=base_url)


def review_file(
    week: str, sections: list[ReviewSection], *, fmt: Literal["md", "html"], now: datetime, base_url: str = ""
) -> str:
    """The review of `week` made of `sections` as a file: Markdown, or one self-contained HTML
    file (plotly.js inlined) whose links start with `base_url`."""
    if fmt == "md":
        return review_markdown(week, sections, generated_at=now)
    return review_page(week, sections, generated_at=now, self_contained=True, base_url=base_url)


# -- after the verdict: decisions, alerts, deliveries (app/decisions.py, app/alerts.py) ----------


def decision_note(decision: Decision) -> DecisionNote:
    evidence = decision.evidence
    return DecisionNote(
        launch_key=decision.launch_key,
        decision_id=decision.decision_id,
        decision=decision.decision,
        reason=decision.reason,
        decided_by=decision.decided_by,
        follow_up=decision.follow_up,
        decided_at=decision.decided_at,
        verdict=evidence.verdict,
        as_of=evidence.as_of,
        kpis=[KpiNote(id=k.id, metric=k.metric, value=k.value, verdict=k.verdict) for k in evidence.kpis],
        superseded_by=decision.superseded_by,
    )


def decision_notes(storage: Storage, key: str) -> list[DecisionNote]:
    """A launch's decisions, oldest first."""
    return [decision_note(d) for d in decisions_of(storage, key)]


def decision_history(notes: Sequence[DecisionNote]) -> list[HistoryEntry]:
    """Decisions as lines of the KPI history."""
    return [
        HistoryEntry(
            at=note.decided_at,
            by=note.decided_by,
            kind="decision",
            summary=f"{note.decision} (verdict {note.verdict.replace('_', ' ')})",
            reason=note.reason,
        )
        for note in notes
    ]


# Cleared alerts stay on the scorecard this long, then only the API lists them.
CLEARED_SHOWN = timedelta(days=14)


def alert_notes(
    storage: Storage, key: str | None = None, *, open_only: bool = False, now: datetime | None = None
) -> list[AlertNote]:
    """Alerts newest first: open ones, and (unless `open_only`) those cleared lately."""
    since = naive_utc(now or datetime.now().astimezone()) - CLEARED_SHOWN
    return [
        AlertNote(
            launch_key=alert.launch_key,
            kind=alert.kind,
            message=alert.message,
            raised_at=alert.raised_at,
            cleared_at=alert.cleared_at,
            cleared_message=alert.cleared_message,
            scorecard_url=scorecard_url(alert.launch_key),
        )
        for alert in storage.alerts(key)
        if alert.cleared_at is None or (not open_only and alert.cleared_at >= since)
    ]


def portfolio_attention(
    storage: Storage, *, now: datetime, states: Sequence[LaunchState] | None = None
) -> Attention:
    """What the portfolio lists first: open alerts, sends that failed, and launches whose
    window closed without a decision (among `states`, default every launch)."""
    states = launches.list_launches(storage) if states is None else states
    names = {state.spec.key: state for state in states}
    return Attention(
        alerts=alert_notes(storage, open_only=True),
        failed_deliveries=[
            DeliveryNote(
                subject=d.subject,
                channel=d.channel,
                attempts=d.attempts,
                last_error=d.last_error,
                next_attempt_at=d.next_attempt_at,
            )
            for d in storage.deliveries()
            if d.status == "failed"
        ],
        undecided=[
            UndecidedNote(
                launch_key=key,
                name=names[key].spec.name,
                closed_at=naive_utc(names[key].spec.window_end),
                scorecard_url=scorecard_url(key),
            )
            for key in undecided_closed(states, storage, now=naive_utc(now))
        ],
    )
