"""The data of every page: the portfolio's rows, a scorecard's context and the weekly review's
sections, each gathered from reports, launch history and readiness warnings for the pure page
functions in dashboards/ to lay out; the ISO weeks the review is read by; and the review as a
file, Markdown or one self-contained HTML file whose links are absolute, so they work from a
mail client."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote, urlencode

from app import launches
from app.compare import compare_launches, target_hints
from app.errors import InvalidInput
from app.launches import LaunchState
from app.reports import ReportService
from app.storage import Storage
from dashboards.markdown import review_markdown
from dashboards.portfolio import PortfolioRow
from dashboards.review import ReviewSection, review_page
from dashboards.scorecard import HistoryEntry, ScorecardContext
from pipelines.compare import comparison
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


def portfolio_rows(storage: Storage, reports: ReportService, *, as_of: datetime) -> list[PortfolioRow]:
    rows = []
    for state in launches.list_launches(storage):
        report = reports.report_for(state, as_of=as_of)
        week_ago = as_of - WEEK
        previous = reports.report_for(state, as_of=week_ago) if week_ago > state.launched_at else None
        rows.append(
            PortfolioRow(
                report=report,
                previous=previous,
                days_since_launch=(as_of - state.launched_at).days,
                scorecard_url=scorecard_url(state.spec.key),
            )
        )
    return rows


def history_entries(state: LaunchState) -> list[HistoryEntry]:
    return [
        HistoryEntry(at=item.at, by=item.by, kind=item.kind, summary=item.summary, reason=item.reason)
        for item in launches.history(state)
    ]


def scorecard_context(
    storage: Storage,
    reports: ReportService,
    key: str,
    *,
    as_of: datetime,
    segment: str | None,
    segment_metric: str | None,
) -> ScorecardContext:
    state = launches.load_launch(storage, key)
    traits = storage.trait_keys()
    segment = segment or ("plan" if "plan" in traits else (traits[0] if traits else None))
    report = reports.report_for(state, as_of=as_of, segment=segment)
    warnings = reports.readiness(key, as_of=as_of).warnings
    json_url = f"/api/launches/{quote(key)}/report" + (f"?segment={quote(segment)}" if segment else "")
    extra = {"segment_metric": segment_metric} if segment_metric else {}
    # The launches that went live before this one, most recent first: its natural peers.
    earlier = sorted(
        (other for other in launches.list_launches(storage) if other.launched_at < state.launched_at),
        key=lambda other: other.launched_at,
        reverse=True,
    )[:COMPARED_PAST_LAUNCHES]
    return ScorecardContext(
        report=report,
        history=history_entries(state),
        warnings=warnings,
        segment_traits=traits,
        json_url=json_url,
        target_hints=target_hints(storage, reports, key, now=as_of).hints,
        compare_url=compare_url([key, *(other.spec.key for other in earlier)]) if earlier else None,
        **extra,  # type: ignore[arg-type]
    )


def review_sections(
    storage: Storage, reports: ReportService, *, week: str, now: datetime, base_url: str = ""
) -> list[ReviewSection]:
    """One section per launch whose window overlaps the week, as of the week's end (or now).
    `base_url` (the service's address) makes the scorecard links absolute."""
    start, end = parse_week(week)
    as_of = min(end, now)
    sections = []
    for state in launches.list_launches(storage):
        spec = state.spec
        if state.launched_at >= as_of or naive_utc(spec.window_end) <= start:
            continue
        previous_as_of = as_of - WEEK
        had_previous = previous_as_of > state.launched_at
        sections.append(
            ReviewSection(
                current=reports.report_for(state, as_of=as_of),
                previous=reports.report_for(state, as_of=previous_as_of) if had_previous else None,
                warnings=reports.readiness(spec.key, as_of=as_of).warnings,
                previous_warnings=reports.readiness(spec.key, as_of=previous_as_of).warnings
                if had_previous
                else [],
                scorecard_url=scorecard_url(spec.key, base_url),
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
