"""Pages checked as a reader and an attacker would: the verdict is there in words, every
figure div is embedded with plotly.js from the service (never a CDN), each page links to its
JSON, hostile names render as text and never as markup, and the weekly review reads in
meeting order, on the page and as Markdown.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import plotly
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from dashboards import theme
from dashboards.layout import FAVICON_HREF, plotly_js, stylesheet
from dashboards.login import login_page
from dashboards.markdown import report_markdown, review_markdown
from dashboards.portfolio import PortfolioRow, portfolio_page
from dashboards.review import ReviewSection, review_order, review_page
from dashboards.scorecard import FIGURE_IDS, HistoryEntry, ScorecardContext, scorecard_page
from pipelines.rates import rate
from pipelines.report_models import Channel, LaunchReport, Segments
from tests.helpers.builders import (
    AS_OF,
    DROP_SUMMARY,
    LAUNCHED,
    build_empty_report,
    build_kpis,
    build_report,
    build_segments,
    build_window,
    segment,
)

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NOW = AS_OF + timedelta(hours=1)


def week_earlier(report: LaunchReport, **update: object) -> LaunchReport:
    """The same launch a week earlier: adoption 1.8% and still inconclusive."""
    kpis = [
        kpi.model_copy(update={"value": 0.018, "verdict": "inconclusive"}) if kpi.id == "adoption" else kpi
        for kpi in report.kpis
    ]
    return report.model_copy(update={"kpis": kpis, "verdict": "inconclusive", **update})


def landed(report: LaunchReport, name: str) -> LaunchReport:
    kpis = [kpi.model_copy(update={"verdict": "met"}) for kpi in report.kpis]
    return report.model_copy(
        update={
            "name": name,
            "launch_key": name.lower().replace(" ", "-"),
            "kpis": kpis,
            "verdict": "landed",
        }
    )


def scorecard(**update: object) -> str:
    fields: dict[str, object] = {
        "report": build_report(),
        "history": [
            HistoryEntry(
                at=datetime(2025, 2, 20, 10, tzinfo=UTC),
                by="ana",
                kind="version",
                summary="KPIs set: adoption >= 8.0%, notice-to-try >= 15.0%",
            ),
            HistoryEntry(
                at=datetime(2025, 3, 10, 16, 30, tzinfo=UTC),
                by="ana",
                kind="amendment",
                summary="notice-to-try: target 15.0% -> 12.0%",
                reason="Banner slot cut to half the audience",
            ),
        ],
        "warnings": ["No events from the iOS app since 2025-03-19"],
        "segment_traits": ["plan", "country"],
        "json_url": "/api/launches/onboarding-checklist/report",
    }
    fields.update(update)
    return scorecard_page(ScorecardContext.model_validate(fields))


def stylesheet_of(page: str) -> str:
    """The stylesheet the page links, as the service serves it at /static/landed.css."""
    assert re.search(r'<link rel="stylesheet" href="/static/landed\.css\?v=[0-9a-f]+">', page)
    return stylesheet()


def element(page: str, element_id: str) -> str:
    match = re.search(rf'<div id="{element_id}"[^>]*>(.*?)</div>', page, re.S)
    assert match, element_id
    return match.group(1)


# ---------------------------------------------------------------------------------- plotly.js


def test_plotly_js_is_the_bundled_copy() -> None:
    bundle = plotly_js()
    assert bundle == get_plotlyjs()
    assert f"plotly.js v{get_plotlyjs_version()}" in bundle[:200]
    assert plotly.__version__.startswith("7.")


# ---------------------------------------------------------------------------------- scorecard


def test_scorecard_verdict_and_kpi_tiles() -> None:
    page = scorecard()
    verdict = element(page, "verdict")
    assert "Missed" in verdict and "provisional" in verdict
    assert 'id="verdict" class="v-missed"' in page
    for kpi in build_kpis():
        assert f'data-kpi="{kpi.id}"' in page
    assert "2.4%" in page and "target ≥ 8.0%" in page and "target ≤ 3.0 days" in page
    assert "amended target: 12.0% (judged against 15.0% as first set)" in page
    assert "set after launch" in page
    assert "by day 14" in page
    # "provisional" beside the launch verdict and beside each of the three KPI verdicts
    assert page.count('<span class="provisional">provisional</span>') == 4


def test_kpi_tiles_wrap_in_whole_groups() -> None:
    """A narrow tile breaks between the interval and the sample size, never inside either
    and never leaving a line that starts with a separator; the badge and its provisional
    mark wrap together under the KPI id."""
    page = scorecard()
    tile = re.search(r'<article class="tile v-missed" data-kpi="adoption">.*?</article>', page)
    assert tile, "adoption tile"
    html = tile.group(0)
    assert (
        '<p class="tile-head"><strong>adoption</strong><span class="marks">'
        '<span class="badge v-missed">Missed</span> <span class="provisional">provisional'
        "</span></span></p>"
    ) in html
    interval = theme.fmt_interval(build_kpis()[0].interval)
    assert (
        f'<p class="muted stats"><span>95% interval <span class="nowrap">{interval}</span>'
        '</span><span class="nowrap">n = 2,000</span></p>'
    ) in html
    assert "· n =" not in page
    css = stylesheet_of(page)
    assert ".nowrap{white-space:nowrap}" in css
    assert ".tile .tile-head{display:flex;flex-wrap:wrap;" in css
    assert ".tile .stats{display:flex;flex-wrap:wrap;" in css
    assert ".marks{display:inline-flex;flex-wrap:wrap;" in css
    assert "white-space:nowrap}" in css[css.index(".provisional{") :]


def test_early_verdicts_say_so_in_plain_words() -> None:
    """A provisional KPI judged on its always-valid interval says so on its tile and in the
    Markdown, beside the fixed-horizon interval that takes over when its period ends."""
    page = scorecard()
    for kpi in build_kpis():
        tile = re.search(rf'<article class="tile [^"]*" data-kpi="{kpi.id}">.*?</article>', page)
        assert tile, kpi.id
        fixed = theme.fmt_metric_interval(kpi.metric, kpi.fixed_interval)
        assert theme.fmt_metric_interval(kpi.metric, kpi.interval) != fixed
        ends = "after day 14" if kpi.by_day == 14 else "once the window closes"
        assert (
            f">early verdict: safe to check weekly</span><span>fixed-horizon interval "
            f'<span class="nowrap">{fixed}</span> judges {ends}</span></p>'
        ) in tile.group(0)
    assert page.count("early verdict: safe to check weekly") == 3
    final = scorecard(report=build_report(kpis=build_kpis(provisional=False), provisional=False))
    assert "early verdict" not in final and "fixed-horizon" not in final

    markdown = report_markdown(build_report())
    adoption = next(line for line in markdown.splitlines() if line.startswith("| adoption |"))
    av, wilson = (theme.fmt_interval(i) for i in (build_kpis()[0].interval, build_kpis()[0].fixed_interval))
    assert f"| {av} (always-valid; fixed-horizon {wilson}) |" in adoption
    assert adoption.endswith("| Missed (provisional), early verdict: safe to check weekly |")
    assert theme.EARLY_VERDICT_NOTE in markdown
    final_markdown = report_markdown(build_report(kpis=build_kpis(provisional=False)))
    assert "early verdict" not in final_markdown and "always-valid" not in final_markdown


def test_scorecard_embeds_every_figure_with_local_plotly() -> None:
    page = scorecard()
    for div_id in FIGURE_IDS.values():
        assert f'id="{div_id}"' in page
        assert re.search(rf'Plotly\.newPlot\(\s*"{div_id}"', page)
    assert page.count("<script src=") == 1
    assert '<script src="/static/plotly.min.js"></script>' in page
    assert "cdn.plot.ly" not in page and "https://" not in page
    assert '"showSendToCloud": false' in page


def test_scorecard_sections_in_words() -> None:
    page = scorecard()
    assert f'<p class="drop">{DROP_SUMMARY}</p>' in page
    assert "Association, not an effect: adopters may differ" in page
    # Each sentence once, as page text: the figures no longer repeat them as annotations.
    assert page.count(DROP_SUMMARY) == 1
    assert page.count("Association, not an effect") == 1
    assert '<a href="/api/launches/onboarding-checklist/report">JSON</a>' in page
    assert '<a href="/">Portfolio</a>' in page and '<a href="/review">Weekly review</a>' in page
    assert "No events from the iOS app since 2025-03-19" in page
    assert "2025-03-10 16:30 UTC" in page
    assert "notice-to-try: target 15.0% -&gt; 12.0%" in page
    assert "Banner slot cut to half the audience" in page
    assert '<div class="scroll"><table class="stack"><thead><tr><th>When</th>' in page
    assert '<td data-label="Why">Banner slot cut to half the audience</td>' in page
    assert "48 of 2,000 active users" in page


def test_scorecard_trait_chooser() -> None:
    page = scorecard(segment_traits=["plan", "country"], segment_metric="conversion_rate")
    form = re.search(r'<form class="inline" method="get".*?</form>', page, re.S)
    assert form
    assert '<select id="segment" name="segment">' in form.group(0)
    assert '<option value="plan" selected>plan</option>' in form.group(0)
    assert '<option value="country">country</option>' in form.group(0)
    assert '<option value="conversion_rate" selected>' in form.group(0)
    assert "Conversion rate by plan" in page


def test_scorecard_of_an_empty_report() -> None:
    page = scorecard(report=build_empty_report(), history=[], warnings=[], segment_traits=[])
    assert "Inconclusive" in element(page, "verdict")
    assert "No KPIs were set for this launch." in page
    assert "No changes since the KPIs were first set." in page
    assert "No days in the window yet" in page
    assert 'id="warnings"' not in page
    for div_id in FIGURE_IDS.values():
        assert f'id="{div_id}"' in page


def test_scorecard_escapes_every_user_string() -> None:
    report = build_report(
        name=HOSTILE,
        owner=HOSTILE,
        kpis=[kpi.model_copy(update={"id": HOSTILE}) for kpi in build_kpis()],
        channels=[Channel(channel=HOSTILE, exposed=5, reach=0.1, tried_after=rate(1, 5))],
        segments=Segments(trait=HOSTILE, rows=[segment(HOSTILE, 50, 5, 2, 1)]),
    )
    page = scorecard(
        report=report,
        warnings=[HOSTILE],
        segment_traits=[HOSTILE],
        history=[HistoryEntry(at=NOW, by=HOSTILE, kind="amendment", summary=HOSTILE, reason=HOSTILE)],
        json_url='/x"><script>alert(1)</script>',
    )
    assert HOSTILE not in page
    assert "<script>alert" not in page
    assert f"<h1>{HOSTILE_ESCAPED}</h1>" in page
    assert f"<title>{HOSTILE_ESCAPED} · Landed</title>" in page
    assert f"<li>{HOSTILE_ESCAPED}</li>" in page
    assert f'<option value="{HOSTILE_ESCAPED}" selected>' in page


# ---------------------------------------------------------------------------------- portfolio


def test_portfolio_rows_and_changes() -> None:
    current = build_report()
    rows = [
        PortfolioRow(
            report=current,
            previous=week_earlier(current),
            days_since_launch=18,
            scorecard_url="/launches/onboarding-checklist",
        ),
        PortfolioRow(
            report=landed(current, "Dark mode"),
            previous=None,
            days_since_launch=3,
            scorecard_url="/launches/dark-mode",
        ),
    ]
    page = portfolio_page(rows, generated_at=NOW)
    assert '<a href="/launches/onboarding-checklist">Onboarding checklist</a>' in page
    assert "Ana Lima" in page
    assert '18 <span class="muted">of 28</span>' in page
    assert "verdict Inconclusive → Missed" in page
    assert "adoption 1.8% → 2.4%, now missed (was inconclusive)" in page
    assert "new this week" in page
    assert 'class="badge v-missed">Missed</span>' in page
    assert 'class="badge v-landed">Landed</span>' in page
    assert ">adoption · Missed</span>" in page and ">adoption · Met</span>" in page
    assert '<a href="/api/launches">JSON</a>' in page
    assert "Generated 2025-03-21 10:00 UTC" in page
    assert "<script" not in page


def test_portfolio_closed_window_reads_as_closed() -> None:
    """A launch 66 days after its 28-day window opened is on day 28 of 28, closed 38 days
    ago: never "66 of 28"."""
    done = build_report(window=build_window(as_of=LAUNCHED + timedelta(days=66)), provisional=False)
    rows = [
        PortfolioRow(report=done, days_since_launch=66, scorecard_url="/l/a"),
        PortfolioRow(report=done, days_since_launch=29, scorecard_url="/l/b"),
        PortfolioRow(report=done, days_since_launch=28, scorecard_url="/l/c"),
        PortfolioRow(report=build_report(), days_since_launch=18, scorecard_url="/l/d"),
    ]
    page = portfolio_page(rows, generated_at=NOW)
    cells = re.findall(r'<td class="num" data-label="Day of window">(.*?)</td>', page)
    assert cells == [
        '28 <span class="muted">of 28</span><div class="muted">closed 38 days ago</div>',
        '28 <span class="muted">of 28</span><div class="muted">closed 1 day ago</div>',
        '28 <span class="muted">of 28</span><div class="muted">closed today</div>',
        '18 <span class="muted">of 28</span>',
    ]
    assert "66" not in "".join(cells)
    assert "<th class=num>Day of window</th>" in page


def test_portfolio_stacks_on_a_phone() -> None:
    page = portfolio_page(
        [PortfolioRow(report=build_report(), days_since_launch=18, scorecard_url="/l/x")],
        generated_at=NOW,
    )
    assert '<div class="scroll"><table class="stack">' in page
    for label in ["Owner", "Day of window", "KPIs", "Verdict", "Since last week"]:
        assert f'data-label="{label}"' in page
    css = stylesheet_of(page)
    assert "@media (max-width:640px){" in css
    assert "table.stack thead{display:none}" in css
    assert "table.stack td[data-label]::before{content:attr(data-label);" in css


def test_portfolio_unchanged_empty_and_hostile() -> None:
    current = build_report()
    unchanged = PortfolioRow(report=current, previous=current, days_since_launch=18, scorecard_url="/l/x")
    assert "no change" in portfolio_page([unchanged], generated_at=NOW)
    assert "No launches yet." in portfolio_page([], generated_at=NOW)

    hostile = PortfolioRow(
        report=build_report(name=HOSTILE, owner=HOSTILE, launch_key=HOSTILE),
        days_since_launch=1,
        scorecard_url='"><script>alert(1)</script>',
    )
    page = portfolio_page([hostile], generated_at=NOW)
    assert HOSTILE not in page and "<script" not in page
    assert f">{HOSTILE_ESCAPED}</a>" in page


# ---------------------------------------------------------------------------------- review


def review_sections() -> list[ReviewSection]:
    base = build_report()
    still_missed = base.model_copy(update={"name": "Bulk export", "launch_key": "bulk-export"})
    inconclusive = base.model_copy(
        update={
            "name": "Autosave",
            "launch_key": "autosave",
            "verdict": "inconclusive",
            "kpis": [kpi.model_copy(update={"verdict": "inconclusive"}) for kpi in base.kpis],
        }
    )
    done = landed(base, "Dark mode")
    return [
        ReviewSection(current=done, previous=done),
        ReviewSection(current=inconclusive, previous=inconclusive),
        ReviewSection(
            current=still_missed, previous=still_missed, warnings=["old"], previous_warnings=["old"]
        ),
        ReviewSection(
            current=base,
            previous=week_earlier(base),
            warnings=["No events from the iOS app since 2025-03-19", "old"],
            previous_warnings=["old"],
            scorecard_url="/launches/onboarding-checklist",
        ),
    ]


def test_review_order_reads_like_a_meeting() -> None:
    names = [s.current.name for s in review_order(review_sections())]
    assert names == ["Onboarding checklist", "Bulk export", "Autosave", "Dark mode"]


def test_review_page() -> None:
    page = review_page("2025-W12", review_sections(), generated_at=NOW)
    order = [page.index(name) for name in ["Onboarding checklist", "Bulk export", "Autosave", "Dark mode"]]
    assert order == sorted(order)
    assert "<h1>Weekly review: 2025-W12</h1>" in page
    assert "Inconclusive → Missed" in page
    assert "<li>adoption 1.8% → 2.4%, now missed (was inconclusive)</li>" in page
    assert "<li>No events from the iOS app since 2025-03-19</li>" in page
    assert "<li>old</li>" not in page
    assert page.count('<span class="flag">verdict changed</span>') == 1
    assert '<a href="/launches/onboarding-checklist">Onboarding checklist</a>' in page
    assert '<a href="/api/launches">JSON</a>' in page
    assert '<a href="/review" aria-current=page>Weekly review</a>' in page
    for index in range(4):
        assert f'id="review-adoption-{index}"' in page
    assert page.count('<script src="/static/plotly.min.js"></script>') == 1


def test_counts_agree_with_their_nouns() -> None:
    one = review_sections()[:1]
    assert '<p class="muted">1 live launch · ' in review_page("2025-W12", one)
    assert '<p class="muted">4 live launches · ' in review_page("2025-W12", review_sections())
    assert '<p class="muted">0 live launches · ' in review_page("2025-W12", [])
    row = PortfolioRow(report=build_report(), days_since_launch=18, scorecard_url="/l/x")
    assert '<p class="muted">1 launch · ' in portfolio_page([row], generated_at=NOW)
    assert '<p class="muted">2 launches · ' in portfolio_page([row, row], generated_at=NOW)
    single = build_report(kpis=build_kpis()[:1])
    assert "1 KPI: 1 missed" in scorecard(report=single)
    assert "3 KPIs: 1 missed, 2 inconclusive" in scorecard()


def test_review_page_self_contained_inlines_plotly() -> None:
    page = review_page("2025-W12", review_sections(), self_contained=True)
    assert "<script src=" not in page
    assert f"plotly.js v{get_plotlyjs_version()}" in page
    assert len(page) > len(plotly_js())


def test_review_page_empty_and_hostile() -> None:
    assert "No live launches this week." in review_page("2025-W12", [])
    hostile = build_report(name=HOSTILE)
    page = review_page(
        HOSTILE, [ReviewSection(current=hostile, warnings=[HOSTILE], scorecard_url=HOSTILE)]
    )
    assert HOSTILE not in page
    assert "first review: Missed" in page
    assert '<span class="flag">new this week</span>' in page


def test_review_markdown() -> None:
    text = review_markdown("2025-W12", review_sections(), generated_at=NOW)
    lines = text.splitlines()
    assert lines[0] == "# Weekly launch review: 2025-W12"
    assert "Generated 2025-03-21 10:00 UTC." in lines
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == [
        "## Onboarding checklist: Missed (provisional)",
        "## Bulk export: Missed (provisional)",
        "## Autosave: Inconclusive (provisional)",
        "## Dark mode: Landed (provisional)",
    ]
    start = lines.index("## Onboarding checklist: Missed (provisional)")
    assert lines[start + 1 : start + 9] == [
        "",
        "- Owner: Ana Lima",
        "- Verdict: Inconclusive → Missed",
        "- KPIs that moved:",
        "  - adoption 1.8% → 2.4%, now missed (was inconclusive)",
        "- New warnings:",
        "  - No events from the iOS app since 2025-03-19",
        "",
    ]
    assert "- Verdict: unchanged: Landed" in lines
    assert lines.count("- KPIs that moved: none") == 3


def test_review_markdown_keeps_hostile_text_inert() -> None:
    section = ReviewSection(current=build_report(name=f"{HOSTILE}\n# pwned"), warnings=["*bold*"])
    text = review_markdown("2025-W12", [section])
    assert "<script>" not in text
    assert "## \\<script\\>alert(1)\\</script\\> # pwned: Missed (provisional)" in text
    assert "  - \\*bold\\*" in text
    assert "- Verdict: first review: Missed" in text


# ---------------------------------------------------------------------------------- login


def test_login_page() -> None:
    page = login_page(None)
    assert '<form method="post" action="/login">' in page
    assert 'name="key" type="password"' in page
    assert 'role="alert"' not in page
    page = login_page(HOSTILE, next_url='/launches/x"><b>')
    assert f'<p class="error" role="alert">{HOSTILE_ESCAPED}</p>' in page
    assert '<input type="hidden" name="next" value="/launches/x&quot;&gt;&lt;b&gt;">' in page
    assert HOSTILE not in page


def test_every_page_declares_an_inline_icon() -> None:
    """Browsers ask for /favicon.ico (a 404 and a console error) unless the page names an
    icon; this one is an inline SVG, so it costs no request either."""
    row = PortfolioRow(report=build_report(), days_since_launch=18, scorecard_url="/l/x")
    documents = [
        portfolio_page([row], generated_at=NOW),
        scorecard(),
        review_page("2025-W12", review_sections()),
        login_page(None),
    ]
    for page in documents:
        links = re.findall(r'<link rel="icon"[^>]*>', page)
        assert links == [f'<link rel="icon" type="image/svg+xml" href="{FAVICON_HREF}">']
        head = page[: page.index("</head>")]
        assert links[0] in head
    href = FAVICON_HREF
    assert href.startswith("data:image/svg+xml,")
    payload = href.removeprefix("data:image/svg+xml,")
    # Percent-encoded whole: nothing that could end the attribute or start a fragment.
    assert not set(payload) & set("\"'<> #")
    svg = unquote(payload)
    assert svg.startswith("<svg xmlns='http://www.w3.org/2000/svg'") and svg.endswith("</svg>")
    assert theme.BLUE in svg


def test_theme_colours_reach_the_page_css() -> None:
    page = portfolio_page([], generated_at=NOW)
    for verdict, colour in theme.VERDICT_COLOURS.items():
        assert f".v-{verdict}{{--v:{colour}}}" in stylesheet_of(page)


def test_scorecard_escapes_pipeline_text_too() -> None:
    report = build_report()
    funnel = report.funnel.model_copy(update={"summary": "<1% of active users never saw it."})
    page = scorecard(report=report.model_copy(update={"funnel": funnel}))
    assert '<p class="drop">&lt;1% of active users never saw it.</p>' in page


def test_segments_chooser_lists_the_current_trait_even_if_not_offered() -> None:
    report = build_report(segments=build_segments())
    page = scorecard(report=report, segment_traits=["country"])
    assert '<option value="plan" selected>plan</option>' in page
