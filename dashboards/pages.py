"""Complete HTML pages of the service (portfolio, launch scorecard, weekly review, login) and
the weekly review as Markdown for meeting notes. Pages are pure functions of the models
defined here: the app gathers reports, history and warnings, and these functions only lay
them out. Every user-controlled string (launch names, KPI ids, channels, trait values,
reasons, warnings) is escaped on its way in, so hostile input renders as text. plotly.js is
never fetched from a CDN: pages point at the service's own copy (see `plotly_js`), or inline
it when a review is exported as one self-contained file.
"""

from __future__ import annotations

import html
import importlib.resources
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Final, Literal

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs_version
from pydantic import BaseModel, ConfigDict, Field

from dashboards import figures, theme
from dashboards.figures import SegmentMetric
from pipelines.launch import retention_week
from pipelines.report_models import KpiResult, LaunchReport

__all__ = [
    "FIGURE_IDS",
    "HistoryEntry",
    "KpiMove",
    "PortfolioRow",
    "ReviewSection",
    "ScorecardContext",
    "SiteLinks",
    "kpi_moves",
    "login_page",
    "markdown_text",
    "plotly_js",
    "plotly_js_version",
    "portfolio_page",
    "review_markdown",
    "review_order",
    "review_page",
    "scorecard_page",
]

FIGURE_IDS: Final[dict[str, str]] = {
    "funnel": "funnel-chart",
    "adoption": "adoption-chart",
    "channels": "channels-chart",
    "segments": "segments-chart",
    "retention": "retention-chart",
    "conversion": "conversion-chart",
}
"""The div id of each scorecard figure, for the app's and the browser tests' selectors."""

PLOTLY_JS_FILENAME: Final = "plotly.min.js"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SiteLinks(_Model):
    """Where the nav and JSON links point; the defaults are the service's own routes."""

    portfolio: str = "/"
    review: str = "/review"
    launches_json: str = "/api/launches"
    login: str = "/login"
    # None leaves the sign-out link out (the sign-in form, an exported file).
    logout: str | None = "/logout"


class PortfolioRow(_Model):
    """One launch on the portfolio: its report now and as of one week earlier (None when
    there was none yet, e.g. launched this week)."""

    report: LaunchReport
    previous: LaunchReport | None = None
    days_since_launch: int
    scorecard_url: str


class HistoryEntry(_Model):
    """One change to a launch's spec: a new version before launch, or an amendment after."""

    at: datetime
    by: str
    kind: Literal["version", "amendment"]
    summary: str = Field(description="what changed, e.g. 'adoption: target 8.0% -> 6.0%'")
    reason: str = ""


class ScorecardContext(_Model):
    report: LaunchReport
    history: list[HistoryEntry] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    segment_traits: list[str] = Field(default_factory=list)
    segment_metric: SegmentMetric = "adoption_rate"
    json_url: str
    static_prefix: str = "/static"
    links: SiteLinks = Field(default_factory=SiteLinks)


class ReviewSection(_Model):
    """One live launch in the weekly review: its report and readiness warnings now and a
    week earlier (previous None: the launch is new to the review)."""

    current: LaunchReport
    previous: LaunchReport | None = None
    warnings: list[str] = Field(default_factory=list)
    previous_warnings: list[str] = Field(default_factory=list)
    scorecard_url: str | None = None

    @property
    def verdict_changed(self) -> bool:
        """A launch new to the review counts as changed: its first verdict is news."""
        return self.previous is None or self.previous.verdict != self.current.verdict

    @property
    def new_warnings(self) -> list[str]:
        before = set(self.previous_warnings)
        return [warning for warning in self.warnings if warning not in before]


@dataclass(frozen=True)
class KpiMove:
    """A KPI whose shown value or verdict differs from a week earlier (unescaped text)."""

    kpi_id: str
    metric: str
    before: str
    after: str
    verdict_before: str
    verdict_after: str

    @property
    def text(self) -> str:
        line = f"{self.kpi_id} {self.before} → {self.after}"
        if self.verdict_before != self.verdict_after:
            line += (
                f", now {theme.verdict_label(self.verdict_after).lower()}"
                f" (was {theme.verdict_label(self.verdict_before).lower()})"
            )
        return line


def kpi_moves(current: LaunchReport, previous: LaunchReport | None) -> list[KpiMove]:
    """KPIs that moved since `previous`, compared as displayed: a change below the shown
    precision is noise to a reader, not news."""
    if previous is None:
        return []
    before = {kpi.id: kpi for kpi in previous.kpis}
    moves: list[KpiMove] = []
    for kpi in current.kpis:
        old = before.get(kpi.id)
        old_text = theme.fmt_metric(kpi.metric, old.value) if old else "not set"
        new_text = theme.fmt_metric(kpi.metric, kpi.value)
        old_verdict = old.verdict if old else kpi.verdict
        if old_text != new_text or old_verdict != kpi.verdict:
            moves.append(KpiMove(kpi.id, kpi.metric, old_text, new_text, old_verdict, kpi.verdict))
    return moves


_SEVERITY: Final[dict[str, int]] = {"missed": 0, "inconclusive": 1, "landed": 2}


def review_order(sections: Iterable[ReviewSection]) -> list[ReviewSection]:
    """As a meeting reads them: changed verdicts first, then missed, inconclusive, landed."""
    return sorted(
        sections,
        key=lambda s: (
            not s.verdict_changed,
            _SEVERITY.get(s.current.verdict, 3),
            s.current.name.casefold(),
        ),
    )


@cache
def plotly_js() -> str:
    """The plotly.min.js bundled with the installed plotly package, for the service to serve
    at `{static_prefix}/plotly.min.js` and for self-contained exports to inline."""
    bundle = importlib.resources.files("plotly") / "package_data" / PLOTLY_JS_FILENAME
    return bundle.read_text(encoding="utf-8")


def plotly_js_version() -> str:
    """The bundled plotly.js version, e.g. for a cache-busting query string."""
    version: str = get_plotlyjs_version()
    return version


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    """A count with its noun agreeing: "1 live launch", "3 live launches", "1,200 users"."""
    return f"{theme.fmt_count(count)} {word if count == 1 else plural or word + 's'}"


FAVICON_SVG: Final = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
    f"<rect width='16' height='16' rx='3' fill='{theme.BLUE}'/>"
    "<path d='M4 8.5l2.6 2.6L12 5.4' fill='none' stroke='#fff' stroke-width='2.2' "
    "stroke-linecap='round' stroke-linejoin='round'/></svg>"
)
FAVICON_HREF: Final = "data:image/svg+xml," + urllib.parse.quote(FAVICON_SVG, safe="")
"""The icon every page declares inline (a tick on the theme's blue), percent-encoded whole, so
`#` and quotes cannot end the URL. The service also answers /favicon.ico with it, which
browsers ask for when they show a response that is not a page (the report's JSON, say)."""


def _theme_css() -> str:
    """CSS custom properties from the theme, so the page and the figures share one palette."""
    palette = {
        "font": theme.FONT_FAMILY,
        "ink": theme.INK,
        "grid": theme.GRID,
        "blue": theme.BLUE,
        "muted": theme.MUTED,
        "grey": theme.GREY,
        "amber": theme.AMBER,
        "red": theme.RED,
    }
    root = ";".join(f"--{name}:{value}" for name, value in palette.items())
    verdicts = "".join(f".v-{v}{{--v:{colour}}}" for v, colour in theme.VERDICT_COLOURS.items())
    return f":root{{{root}}}{verdicts}"


_CSS: Final = (
    _theme_css()
    + """*{box-sizing:border-box}
body{margin:0;font-family:var(--font);color:var(--ink);background:#f6f8fa;line-height:1.45}
header.site{background:#fff;border-bottom:1px solid var(--grid)}
header.site nav{max-width:1160px;margin:0 auto;padding:.7rem 1.2rem;display:flex;gap:1.2rem;
align-items:center}
header.site .brand{font-weight:700;margin-right:auto;color:var(--ink);text-decoration:none}
header.site a{color:var(--blue);text-decoration:none}
header.site a[aria-current=page]{font-weight:600;color:var(--ink)}
main{max-width:1160px;margin:0 auto;padding:1.2rem}
h1{font-size:1.6rem;margin:.2rem 0}
h2{font-size:1.15rem;margin:0 0 .6rem}
a{color:var(--blue)}
.muted{color:var(--muted)}
.card{background:#fff;border:1px solid var(--grid);border-radius:8px;padding:1rem 1.2rem;
margin:0 0 1rem}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:999px;font-size:.82rem;
font-weight:600;color:#fff;background:var(--v,var(--grey));white-space:nowrap}
.v-inconclusive.badge{color:var(--ink)}
.provisional{display:inline-block;padding:.05rem .45rem;border:1px dashed var(--muted);
border-radius:4px;font-size:.78rem;color:var(--muted);font-style:italic;white-space:nowrap}
.nowrap{white-space:nowrap}
.marks{display:inline-flex;flex-wrap:wrap;align-items:center;gap:.3rem}
.flag{display:inline-block;margin:.15rem .3rem 0 0;padding:.05rem .45rem;border-radius:4px;
font-size:.78rem;background:#fff8c5;color:#4d2d00;border:1px solid #d4a72c}
#verdict{display:flex;align-items:center;gap:.8rem;margin:.6rem 0 .2rem}
#verdict .verdict-label{font-size:2.3rem;font-weight:800;color:var(--v)}
.tiles{margin:0 0 1rem;display:grid;gap:1rem;
grid-template-columns:repeat(auto-fill,minmax(250px,1fr))}
.tile{background:#fff;border:1px solid var(--grid);border-top:5px solid var(--v);
border-radius:8px;padding:.8rem 1rem}
.tile .value{font-size:1.9rem;font-weight:700;margin:.2rem 0}
.tile p{margin:.15rem 0}
.tile .tile-head{display:flex;flex-wrap:wrap;align-items:center;gap:.3rem .5rem}
.tile .stats{display:flex;flex-wrap:wrap;column-gap:.8rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--grid);vertical-align:top}
th{font-weight:600;color:var(--muted)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.warnings{border-left:5px solid var(--amber)}
.warnings ul{margin:.3rem 0 0;padding-left:1.2rem}
.note{font-size:.9rem;color:var(--muted);margin:.3rem 0 0}
.drop{font-size:1.02rem}
form.inline{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;margin:0 0 .6rem}
select,input,button{font:inherit;padding:.3rem .5rem;border:1px solid #d0d7de;border-radius:6px}
button{background:var(--blue);color:#fff;border-color:var(--blue);cursor:pointer}
.error{color:var(--red);font-weight:600}
.login{max-width:380px;margin:3rem auto}
.login label{display:block;font-weight:600;margin-bottom:.3rem}
.login input{width:100%;margin-bottom:.8rem}
ul.moves{margin:.2rem 0 .6rem;padding-left:1.2rem}
@media (max-width:640px){
main{padding:1rem .75rem}
.card{padding:.8rem .9rem}
table.stack thead{display:none}
table.stack tr{display:block;padding:.5rem 0;border-bottom:1px solid var(--grid)}
table.stack td{display:block;padding:.2rem 0;border:0;text-align:left}
table.stack td[data-label]::before{content:attr(data-label);display:block;font-size:.78rem;
font-weight:600;color:var(--muted)}
table.stack td.num div{display:inline;margin-left:.4rem}
}
footer{max-width:1160px;margin:0 auto;padding:0 1.2rem 2rem;color:var(--muted);font-size:.85rem}
"""
)


def _script_tags(static_prefix: str, *, self_contained: bool) -> str:
    if self_contained:
        # Inlined text must not end the script element early; a JS string or regex reads
        # "<\/script" exactly as "</script".
        bundle = plotly_js().replace("</script", "<\\/script")
        return f"<script>{bundle}</script>"
    src = f"{static_prefix.rstrip('/')}/{PLOTLY_JS_FILENAME}"
    return f'<script src="{_e(src)}"></script>'


def _nav(links: SiteLinks, current: str | None) -> str:
    items = [("portfolio", links.portfolio, "Portfolio"), ("review", links.review, "Weekly review")]
    anchors = "".join(
        f'<a href="{_e(url)}"{" aria-current=page" if key == current else ""}>{label}</a>'
        for key, url, label in items
    )
    if links.logout is not None:
        anchors += f'<a class="sign-out" href="{_e(links.logout)}">Sign out</a>'
    return (
        f'<header class="site"><nav><a class="brand" href="{_e(links.portfolio)}">Landed</a>'
        f"{anchors}</nav></header>"
    )


def _document(
    title: str,
    body: str,
    *,
    links: SiteLinks,
    current: str | None,
    head: str = "",
    footer: str = "",
) -> str:
    """A whole page; `title` is plain text (escaped here), `body` and `head` are HTML."""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" type="image/svg+xml" href="{_e(FAVICON_HREF)}">'
        f"<title>{_e(title)} · Landed</title><style>{_CSS}</style>{head}</head>"
        f"<body>{_nav(links, current)}<main>{body}</main>"
        f"<footer>{footer}</footer></body></html>\n"
    )


def _figure_html(fig: go.Figure, div_id: str) -> str:
    rendered: str = fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=theme.PLOTLY_CONFIG
    )
    return rendered


def _badge(verdict: str, text: str | None = None, *, title: str | None = None) -> str:
    label = text if text is not None else theme.verdict_label(verdict)
    tooltip = f' title="{_e(title)}"' if title else ""
    return f'<span class="badge v-{_e(verdict)}"{tooltip}>{_e(label)}</span>'


def _provisional(provisional: bool) -> str:
    return f' <span class="provisional">{theme.PROVISIONAL}</span>' if provisional else ""


def _comparator(kpi: KpiResult) -> str:
    return "≥" if kpi.comparator == ">=" else "≤"


def _kpi_target(kpi: KpiResult) -> str:
    return f"{_comparator(kpi)} {theme.fmt_metric(kpi.metric, kpi.target)}"


def _period_end(kpi: KpiResult) -> str:
    """When the fixed-horizon interval takes over from the always-valid one, in plain words."""
    return "once the window closes" if kpi.by_day is None else f"after day {kpi.by_day}"


def _verdict_counts(report: LaunchReport) -> str:
    if not report.kpis:
        return "No KPIs set"
    counts: dict[str, int] = {}
    for kpi in report.kpis:
        counts[kpi.verdict] = counts.get(kpi.verdict, 0) + 1
    parts = [f"{counts[v]} {theme.verdict_label(v).lower()}" for v in theme.VERDICT_LABELS if v in counts]
    return f"{_plural(len(report.kpis), 'KPI')}: " + ", ".join(parts)


# ----------------------------------------------------------------------------- portfolio


def _change_lines(current: LaunchReport, previous: LaunchReport | None) -> list[str]:
    """What changed since a week earlier, as plain (unescaped) lines."""
    if previous is None:
        return ["new this week"]
    lines: list[str] = []
    if previous.verdict != current.verdict:
        lines.append(
            f"verdict {theme.verdict_label(previous.verdict)} → {theme.verdict_label(current.verdict)}"
        )
    lines.extend(move.text for move in kpi_moves(current, previous))
    if not current.kpis:
        before = theme.fmt_percent(previous.metrics.adoption_rate.value)
        after = theme.fmt_percent(current.metrics.adoption_rate.value)
        if before != after:
            lines.append(f"adoption {before} → {after}")
    return lines or ["no change"]


def _window_day(row: PortfolioRow, window_days: int) -> str:
    """Which day of its window a launch is on: "13 of 28" while measuring; once the window
    has closed, "28 of 28" and how long ago it closed, so no day count runs past the window."""
    if row.report.provisional or row.days_since_launch < window_days:
        return f'{row.days_since_launch} <span class="muted">of {window_days}</span>'
    since = row.days_since_launch - window_days
    ago = "today" if since == 0 else f"{_plural(since, 'day')} ago"
    return f'{window_days} <span class="muted">of {window_days}</span><div class="muted">closed {ago}</div>'


def _portfolio_row(row: PortfolioRow) -> str:
    report = row.report
    window_days = round((report.window.full_end - report.window.start).total_seconds() / 86400)
    kpis = (
        " ".join(
            _badge(
                kpi.verdict,
                f"{kpi.id} · {theme.verdict_label(kpi.verdict)}",
                title=f"{theme.metric_label(kpi.metric)} {theme.fmt_metric(kpi.metric, kpi.value)}"
                f" vs target {_kpi_target(kpi)}"
                + (f" ({theme.EARLY_VERDICT})" if kpi.interval_kind == "always_valid" else ""),
            )
            for kpi in report.kpis
        )
        or '<span class="muted">no KPIs</span>'
    )
    changes = "<br>".join(_e(line) for line in _change_lines(report, row.previous))
    # data-label names each cell where a phone stacks the row (see table.stack in _CSS).
    return (
        f'<tr><td><a href="{_e(row.scorecard_url)}">{_e(report.name)}</a>'
        f'<div class="muted">{_e(report.launch_key)}</div></td>'
        f'<td data-label="Owner">{_e(report.owner)}</td>'
        f'<td class="num" data-label="Day of window">{_window_day(row, window_days)}</td>'
        f'<td data-label="KPIs">{kpis}</td>'
        f'<td data-label="Verdict"><span class="marks">{_badge(report.verdict)}'
        f"{_provisional(report.provisional)}</span></td>"
        f'<td data-label="Since last week">{changes}</td></tr>'
    )


def portfolio_page(
    rows: Sequence[PortfolioRow],
    *,
    generated_at: datetime,
    links: SiteLinks | None = None,
) -> str:
    """Every launch on one table: owner, day of its window, KPI verdicts, the launch verdict
    (marked provisional while its window is open) and what changed since a week earlier."""
    links = links or SiteLinks()
    if rows:
        table = (
            '<div class="scroll"><table class="stack"><thead><tr><th>Launch</th><th>Owner</th>'
            "<th class=num>Day of window</th><th>KPIs</th><th>Verdict</th>"
            "<th>Since last week</th></tr></thead><tbody>"
            + "".join(_portfolio_row(row) for row in rows)
            + "</tbody></table></div>"
        )
    else:
        table = '<p class="muted">No launches yet.</p>'
    body = (
        f'<h1>Launches</h1><p class="muted">{_plural(len(rows), "launch", "launches")} · '
        f'<a href="{_e(links.launches_json)}">JSON</a></p>'
        f'<section class="card">{table}</section>'
    )
    return _document(
        "Portfolio",
        body,
        links=links,
        current="portfolio",
        footer=f"Generated {_e(theme.fmt_datetime(generated_at))}",
    )


# ----------------------------------------------------------------------------- scorecard


def _kpi_tile(kpi: KpiResult) -> str:
    flags: list[str] = []
    if kpi.amended and kpi.amended_target is not None:
        flags.append(
            f"amended target: {theme.fmt_metric(kpi.metric, kpi.amended_target)}"
            f" (judged against {theme.fmt_metric(kpi.metric, kpi.target)} as first set)"
        )
    elif kpi.amended:
        flags.append("amended (judged as first set)")
    if kpi.set_after_launch:
        flags.append("set after launch")
    if kpi.by_day is not None:
        flags.append(f"by day {kpi.by_day}")
    sample = f"n = {theme.fmt_count(kpi.n)}"
    if kpi.verdict == "insufficient_data":
        sample += f", needs {theme.fmt_count(kpi.min_sample)}"
    # The interval shown first is the one that judged; an early verdict also shows the
    # fixed-horizon interval, so the reader sees why it is wider and when that one takes over.
    early = (
        f'<p class="muted stats early"><span class="nowrap" title="{_e(theme.EARLY_VERDICT_NOTE)}">'
        f'{_e(theme.EARLY_VERDICT)}</span><span>fixed-horizon interval <span class="nowrap">'
        f"{_e(theme.fmt_metric_interval(kpi.metric, kpi.fixed_interval))}</span> judges "
        f"{_e(_period_end(kpi))}</span></p>"
        if kpi.interval_kind == "always_valid"
        else ""
    )
    return (
        f'<article class="tile v-{_e(kpi.verdict)}" data-kpi="{_e(kpi.id)}">'
        f'<p class="tile-head"><strong>{_e(kpi.id)}</strong>'
        f'<span class="marks">{_badge(kpi.verdict)}{_provisional(kpi.provisional)}</span></p>'
        f'<p class="muted">{_e(theme.metric_label(kpi.metric))}</p>'
        f'<p class="value">{_e(theme.fmt_metric(kpi.metric, kpi.value))}</p>'
        f"<p>target {_e(_kpi_target(kpi))}</p>"
        f'<p class="muted stats"><span>95% interval <span class="nowrap">'
        f"{_e(theme.fmt_metric_interval(kpi.metric, kpi.interval))}</span></span>"
        f'<span class="nowrap">{_e(sample)}</span></p>{early}'
        + "".join(f'<span class="flag">{_e(flag)}</span>' for flag in flags)
        + "</article>"
    )


def _metrics_table(report: LaunchReport) -> str:
    metrics = report.metrics
    rates = [
        ("exposure_rate", metrics.exposure_rate, "active users"),
        ("adoption_rate", metrics.adoption_rate, "active users"),
        ("notice_to_try_rate", metrics.notice_to_try_rate, "exposed users"),
        ("repeat_usage_rate", metrics.repeat_usage_rate, "adopters"),
        ("conversion_rate", metrics.conversion_rate, "adopters"),
        ("baseline_conversion_rate", metrics.baseline_conversion_rate, "active before launch"),
    ]
    rows = [
        f"<tr><td>{_e(theme.metric_label(name))}</td><td class=num>{_e(theme.fmt_percent(r.value))}"
        f"</td><td class=num>{_e(theme.fmt_k_of_n(r.k, r.n))} {_e(of)}</td>"
        f"<td>{_e(theme.fmt_interval(r.interval))}</td></tr>"
        for name, r, of in rates
    ]
    median = metrics.median_days_to_adopt
    rows.append(
        f"<tr><td>{_e(theme.metric_label('median_days_to_adopt'))}</td>"
        f"<td class=num>{_e(theme.fmt_days(median.value))}</td>"
        f"<td class=num>{_e(theme.fmt_count(median.n))} adopters</td>"
        f"<td>{_e(theme.fmt_interval(median.interval, theme.fmt_days))}</td></tr>"
    )
    sticky = metrics.stickiness
    rows.append(
        f"<tr><td>Stickiness</td><td class=num>{_e(theme.fmt_percent(sticky.value))}</td>"
        f"<td class=num>{_e(theme.fmt_count(sticky.adopters))} adopters over "
        f"{sticky.full_days} full days</td><td>{_e(theme.fmt_interval(sticky.interval))}</td></tr>"
    )
    return (
        '<div class="scroll"><table><thead><tr><th>Metric</th><th class=num>Value</th>'
        "<th class=num>Counts</th><th>95% interval</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _history_table(history: Sequence[HistoryEntry]) -> str:
    if not history:
        return '<p class="muted">No changes since the KPIs were first set.</p>'
    rows = "".join(
        f'<tr><td data-label="When">{_e(theme.fmt_datetime(entry.at))}</td>'
        f'<td data-label="Who">{_e(entry.by)}</td><td data-label="Kind">{_e(entry.kind)}</td>'
        f'<td data-label="Change">{_e(entry.summary)}</td>'
        f'<td data-label="Why">{_e(entry.reason or theme.DASH)}</td></tr>'
        for entry in history
    )
    return (
        '<div class="scroll"><table class="stack"><thead><tr><th>When</th><th>Who</th><th>Kind</th>'
        f"<th>Change</th><th>Why</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _segment_form(ctx: ScorecardContext) -> str:
    current = ctx.report.segments.trait if ctx.report.segments else None
    traits = list(ctx.segment_traits)
    if current is not None and current not in traits:
        traits.insert(0, current)
    if not traits:
        return ""
    options = "".join(
        f'<option value="{_e(t)}"{" selected" if t == current else ""}>{_e(t)}</option>' for t in traits
    )
    metric_options = "".join(
        f'<option value="{m}"{" selected" if m == ctx.segment_metric else ""}>'
        f"{_e(theme.metric_label(m))}</option>"
        for m in figures.SEGMENT_METRICS
    )
    return (
        '<form class="inline" method="get" action="#segments">'
        '<label for="segment">Break down by</label>'
        f'<select id="segment" name="segment">{options}</select>'
        '<label for="metric">rate</label>'
        f'<select id="metric" name="metric">{metric_options}</select>'
        "<button type=submit>Show</button></form>"
    )


def _association_note(report: LaunchReport) -> str:
    note = report.adopters_vs_non_adopters.note.strip()
    if "association" in note.lower():
        return note
    return f"{note} This is an association, not an effect of the feature.".strip()


def _target_for(report: LaunchReport, metric: str) -> float | None:
    return next((kpi.target for kpi in report.kpis if kpi.metric == metric), None)


def scorecard_page(ctx: ScorecardContext) -> str:
    """One launch: the verdict at the top, KPI tiles against their targets, then why it
    landed or not (funnel, adoption over time, channels, segments, retention, adopters vs
    non-adopters), the KPI history and readiness warnings."""
    report = ctx.report
    window = report.window
    window_days = (window.full_end - window.start).total_seconds() / 86400
    measured = (
        f"provisional: {window.days:.1f} of {window_days:.0f} days measured"
        if report.provisional
        else f"{window_days:.0f} days"
    )
    warnings = (
        '<section class="card warnings" id="warnings"><h2>Readiness warnings</h2><ul>'
        + "".join(f"<li>{_e(w)}</li>" for w in ctx.warnings)
        + "</ul></section>"
        if ctx.warnings
        else ""
    )
    tiles = "".join(_kpi_tile(kpi) for kpi in report.kpis) or (
        '<p class="muted">No KPIs were set for this launch.</p>'
    )
    retention_kpi = next((kpi for kpi in report.kpis if retention_week(kpi.metric) is not None), None)
    charts = {
        "funnel": figures.funnel_chart(report.funnel),
        "adoption": figures.adoption_timeline_chart(report.timeline, start=window.start),
        "channels": figures.channels_chart(report.channels, active=report.counts.active),
        "segments": figures.segments_chart(
            report.segments,
            metric=ctx.segment_metric,
            target=_target_for(report, ctx.segment_metric),
        ),
        "retention": figures.retention_chart(
            report.metrics.week_n_retention,
            target=retention_kpi.target if retention_kpi else None,
            target_week=retention_week(retention_kpi.metric) if retention_kpi else None,
        ),
        "conversion": figures.conversion_comparison_chart(report.adopters_vs_non_adopters),
    }
    div = {name: _figure_html(fig, FIGURE_IDS[name]) for name, fig in charts.items()}
    drop = report.funnel.summary or "No drop to report yet."
    body = (
        f'<p class="muted">{_e(report.launch_key)} · owner {_e(report.owner)} · '
        f'<a href="{_e(ctx.json_url)}">JSON</a></p>'
        f"<h1>{_e(report.name)}</h1>"
        f'<div id="verdict" class="v-{_e(report.verdict)}">'
        f'<span class="verdict-label">{_e(theme.verdict_label(report.verdict))}</span>'
        f"{_provisional(report.provisional)}</div>"
        f'<p class="muted">{_e(_verdict_counts(report))} · window '
        f"{_e(theme.fmt_date(window.start))} to {_e(theme.fmt_date(window.full_end))}"
        f" ({_e(measured)}) · as of {_e(theme.fmt_datetime(window.as_of))}</p>"
        f"{warnings}"
        f'<section id="kpis"><div class="tiles">{tiles}</div></section>'
        f'<section class="card" id="funnel"><h2>Funnel</h2>'
        f'<p class="drop">{_e(drop)}</p>{div["funnel"]}</section>'
        f'<section class="card" id="adoption"><h2>Adoption over time</h2>{div["adoption"]}'
        "</section>"
        f'<section class="card" id="channels"><h2>Channels</h2>{div["channels"]}</section>'
        f'<section class="card" id="segments"><h2>Segments</h2>{_segment_form(ctx)}'
        f"{div['segments']}</section>"
        f'<section class="card" id="retention"><h2>Retention</h2>{div["retention"]}</section>'
        f'<section class="card" id="conversion"><h2>Adopters vs non-adopters</h2>'
        f'{div["conversion"]}<p class="note">{_e(_association_note(report))}</p></section>'
        f'<section class="card" id="metrics"><h2>All metrics</h2>{_metrics_table(report)}'
        "</section>"
        f'<section class="card" id="history"><h2>KPI history</h2>'
        f"{_history_table(ctx.history)}</section>"
    )
    return _document(
        report.name,
        body,
        links=ctx.links,
        current=None,
        head=_script_tags(ctx.static_prefix, self_contained=False),
        footer=f"Report as of {_e(theme.fmt_datetime(window.as_of))}",
    )


# ----------------------------------------------------------------------------- review


def _verdict_line(section: ReviewSection) -> str:
    """Plain text: how the launch verdict moved this week."""
    now = theme.verdict_label(section.current.verdict)
    if section.previous is None:
        return f"first review: {now}"
    before = theme.verdict_label(section.previous.verdict)
    if section.verdict_changed:
        return f"{before} → {now}"
    return f"unchanged: {now}"


def _review_section(section: ReviewSection, index: int) -> str:
    report = section.current
    div_id = f"review-adoption-{index}"
    title = (
        f'<a href="{_e(section.scorecard_url)}">{_e(report.name)}</a>'
        if section.scorecard_url
        else _e(report.name)
    )
    moves = kpi_moves(report, section.previous)
    moved = (
        '<ul class="moves">' + "".join(f"<li>{_e(m.text)}</li>" for m in moves) + "</ul>"
        if moves
        else '<p class="muted">No KPI moved.</p>'
    )
    new_warnings = section.new_warnings
    warned = (
        '<ul class="moves">' + "".join(f"<li>{_e(w)}</li>" for w in new_warnings) + "</ul>"
        if new_warnings
        else '<p class="muted">No new warnings.</p>'
    )
    chart = _figure_html(
        figures.adoption_timeline_chart(report.timeline, start=report.window.start, height=320),
        div_id,
    )
    changed = (
        ' <span class="flag">new this week</span>'
        if section.previous is None
        else ' <span class="flag">verdict changed</span>'
        if section.verdict_changed
        else ""
    )
    return (
        f'<section class="card review" data-launch="{_e(report.launch_key)}">'
        f"<h2>{title} {_badge(report.verdict)}{_provisional(report.provisional)}{changed}</h2>"
        f'<p class="muted">owner {_e(report.owner)} · {_e(_verdict_counts(report))}</p>'
        f"<p><strong>Verdict:</strong> {_e(_verdict_line(section))}</p>"
        f"<p><strong>KPIs that moved</strong></p>{moved}"
        f"<p><strong>New warnings</strong></p>{warned}{chart}</section>"
    )


def review_page(
    week: str,
    sections: Sequence[ReviewSection],
    *,
    generated_at: datetime | None = None,
    static_prefix: str = "/static",
    self_contained: bool = False,
    json_url: str | None = None,
    links: SiteLinks | None = None,
) -> str:
    """The weekly review of live launches, in meeting order. `self_contained` inlines
    plotly.js (about 5 MB) so the file opens anywhere, offline, without the service."""
    links = links or SiteLinks()
    ordered = review_order(sections)
    parts = [_review_section(section, index) for index, section in enumerate(ordered)]
    body = (
        f"<h1>Weekly review: {_e(week)}</h1>"
        f'<p class="muted">{_plural(len(ordered), "live launch", "live launches")} · '
        f'<a href="{_e(json_url or links.launches_json)}">JSON</a></p>'
        + ("".join(parts) or '<p class="muted">No live launches this week.</p>')
    )
    footer = f"Generated {_e(theme.fmt_datetime(generated_at))}" if generated_at else ""
    return _document(
        f"Weekly review {week}",
        body,
        links=links,
        current="review",
        head=_script_tags(static_prefix, self_contained=self_contained),
        footer=footer,
    )


_MARKDOWN_SPECIAL: Final = "\\`*_[]<>|~"


def markdown_text(value: str) -> str:
    """User text made inert in Markdown: inline markup characters backslash-escaped (so
    `<script>` stays text when the notes are rendered) and line breaks flattened so a name
    cannot start a block of its own; user text never starts a line, so block markers
    (`#`, `-`, `1.`) need no escaping."""
    flat = " ".join(value.split())
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in flat)


def review_markdown(
    week: str, sections: Sequence[ReviewSection], *, generated_at: datetime | None = None
) -> str:
    """The weekly review as Markdown for meeting notes, in the same order as the page."""
    ordered = review_order(sections)
    lines = [f"# Weekly launch review: {markdown_text(week)}", ""]
    if generated_at is not None:
        lines += [f"Generated {theme.fmt_datetime(generated_at)}.", ""]
    if not ordered:
        lines += ["No live launches this week.", ""]
    for section in ordered:
        report = section.current
        provisional = " (provisional)" if report.provisional else ""
        lines += [
            f"## {markdown_text(report.name)}: {theme.verdict_label(report.verdict)}{provisional}",
            "",
            f"- Owner: {markdown_text(report.owner)}",
            f"- Verdict: {markdown_text(_verdict_line(section))}",
        ]
        moves = kpi_moves(report, section.previous)
        if moves:
            lines.append("- KPIs that moved:")
            lines += [f"  - {markdown_text(move.text)}" for move in moves]
        else:
            lines.append("- KPIs that moved: none")
        new_warnings = section.new_warnings
        if new_warnings:
            lines.append("- New warnings:")
            lines += [f"  - {markdown_text(warning)}" for warning in new_warnings]
        else:
            lines.append("- New warnings: none")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- login


def login_page(error: str | None, *, next_url: str | None = None, links: SiteLinks | None = None) -> str:
    """A form posting a read key (field `key`) to the login route; `next_url` rides along
    as a hidden field so the app can return the user where they were going."""
    links = links or SiteLinks(logout=None)
    message = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
    hidden = f'<input type="hidden" name="next" value="{_e(next_url)}">' if next_url else ""
    body = (
        '<section class="card login"><h1>Sign in</h1>'
        '<p class="muted">Enter a read key to see launch reports.</p>'
        f'{message}<form method="post" action="{_e(links.login)}">'
        '<label for="key">Read key</label>'
        '<input id="key" name="key" type="password" autocomplete="current-password" '
        f'required autofocus>{hidden}<button type="submit">Sign in</button></form></section>'
    )
    return _document("Sign in", body, links=links, current=None)
