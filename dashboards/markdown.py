"""Launch reports and the weekly review as Markdown, for meeting notes: `landed report --format
md`, `landed review --format md` and their API routes. User text is made inert on its way in,
so a name cannot turn into markup when the notes are rendered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from dashboards import theme
from dashboards.notes import decision_line
from dashboards.review import ReviewSection, kpi_moves, review_order, verdict_line
from pipelines.report_models import LaunchReport, Rate

__all__ = ["markdown_text", "report_markdown", "review_markdown"]

_MARKDOWN_SPECIAL: Final = "\\`*_[]<>|~"


def markdown_text(value: str) -> str:
    """User text made inert in Markdown: inline markup characters backslash-escaped (so
    `<script>` stays text when the notes are rendered) and line breaks flattened so a name
    cannot start a block of its own; user text never starts a line, so block markers
    (`#`, `-`, `1.`) need no escaping."""
    flat = " ".join(value.split())
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in flat)


def _rate_line(name: str, rate: Rate) -> str:
    return (
        f"| {name} | {theme.fmt_percent(rate.value)} | {rate.k:,} of {rate.n:,} | "
        f"{theme.fmt_interval(rate.interval)} |"
    )


def report_markdown(report: LaunchReport) -> str:
    """The report's verdict, KPIs, metrics, funnel and channels as Markdown."""
    window = report.window
    provisional = " (provisional: the window is still open)" if report.provisional else ""
    lines = [
        f"# {markdown_text(report.name)}: {theme.verdict_label(report.verdict)}{provisional}",
        "",
        f"Owner: {markdown_text(report.owner)}. Window {theme.fmt_datetime(window.start)} to "
        f"{theme.fmt_datetime(window.end)} ({window.days:.1f} days), "
        f"as of {theme.fmt_datetime(window.as_of)}.",
        "",
        "## KPIs",
        "",
        "| KPI | metric | value | 95% interval | n | target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for kpi in report.kpis:
        target = f"{kpi.comparator} {theme.fmt_metric(kpi.metric, kpi.target)}"
        if kpi.amended_target is not None:
            target += f" (amended to {theme.fmt_metric(kpi.metric, kpi.amended_target)}, judged as first set)"
        if kpi.set_after_launch:
            target += " (set after launch)"
        verdict = theme.verdict_label(kpi.verdict) + (" (provisional)" if kpi.provisional else "")
        interval = theme.fmt_metric_interval(kpi.metric, kpi.interval)
        if kpi.interval_kind == "always_valid":
            verdict += f", {theme.EARLY_VERDICT}"
            interval += (
                f" (always-valid; fixed-horizon {theme.fmt_metric_interval(kpi.metric, kpi.fixed_interval)})"
            )
        lines.append(
            f"| {markdown_text(kpi.id)} | {kpi.metric} | {theme.fmt_metric(kpi.metric, kpi.value)} | "
            f"{interval} | {kpi.n:,} | {target} | {verdict} |"
        )
    if not report.kpis:
        lines.append("| (no KPIs) | | | | | | |")
    if any(kpi.interval_kind == "always_valid" for kpi in report.kpis):
        lines += ["", theme.EARLY_VERDICT_NOTE]
    m = report.metrics
    lines += [
        "",
        "## Why",
        "",
        f"**{markdown_text(report.funnel.summary)}**",
        "",
        "| step | users | from previous step |",
        "|---|---|---|",
        *(
            f"| {step.step} | {step.users:,} | {theme.fmt_percent(step.rate_from_parent)} |"
            for step in report.funnel.steps
        ),
        "",
        "| metric | value | k of n | 95% interval |",
        "|---|---|---|---|",
        _rate_line("exposure_rate", m.exposure_rate),
        _rate_line("adoption_rate", m.adoption_rate),
        _rate_line("notice_to_try_rate", m.notice_to_try_rate),
        _rate_line("repeat_usage_rate", m.repeat_usage_rate),
        _rate_line("conversion_rate", m.conversion_rate),
        _rate_line("baseline_conversion_rate", m.baseline_conversion_rate),
        *(_rate_line(f"week_{w.week}_retention", w.rate) for w in m.week_n_retention),
        f"| median_days_to_adopt | {theme.fmt_days(m.median_days_to_adopt.value)} | n = "
        f"{m.median_days_to_adopt.n:,} | "
        f"{theme.fmt_metric_interval('median_days_to_adopt', m.median_days_to_adopt.interval)} |",
        f"| stickiness | {theme.fmt_percent(m.stickiness.value)} | {m.stickiness.adopters:,} adopters, "
        f"{m.stickiness.full_days} full days | {theme.fmt_interval(m.stickiness.interval)} |",
    ]
    if report.channels:
        lines += ["", "| channel | exposed | reach | tried after exposure |", "|---|---|---|---|"]
        lines += [
            f"| {markdown_text(c.channel)} | {c.exposed:,} | {theme.fmt_percent(c.reach)} | "
            f"{theme.fmt_percent(c.tried_after.value)} ({c.tried_after.k:,} of {c.tried_after.n:,}) |"
            for c in report.channels
        ]
    cmp = report.adopters_vs_non_adopters
    lines += [
        "",
        f"Adopters converted at {theme.fmt_percent(cmp.adopters.value)}, non-adopters at "
        f"{theme.fmt_percent(cmp.non_adopters.value)}: difference {theme.fmt_points(cmp.difference)} "
        f"({theme.fmt_points_interval(cmp.interval)}). {markdown_text(cmp.note)}",
        "",
    ]
    return "\n".join(lines)


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
            f"- Verdict: {markdown_text(verdict_line(section))}",
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
        if section.decision is not None:
            lines.append(f"- {markdown_text(decision_line(section.decision))}")
        if section.scorecard_url and section.scorecard_url.startswith(("http://", "https://")):
            lines.append(f"- Scorecard: {section.scorecard_url}")
        lines.append("")
    return "\n".join(lines)
