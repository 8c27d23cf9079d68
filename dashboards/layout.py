"""What every page shares: the Jinja2 environment that renders `dashboards/templates/` with
autoescaping on (a user's string can only ever reach a page as text), the frame around each
page (header, nav, footer, icon, stylesheet), the stylesheet and plotly.js the service serves
itself, and the few pieces of wording more than one page uses. plotly.js is never fetched from a
CDN: pages point at the service's own copy, or inline it (and the stylesheet) when a review is
exported as one self-contained file.
"""

from __future__ import annotations

import hashlib
import html
import importlib.resources
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Final, Literal

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from markupsafe import Markup

from dashboards import theme
from pipelines.report_models import KpiResult, LaunchReport

__all__ = [
    "FAVICON_HREF",
    "FAVICON_SVG",
    "Freshness",
    "Nav",
    "figure_html",
    "kpi_target",
    "plotly_js",
    "plural",
    "render",
    "render_page",
    "stylesheet",
    "verdict_counts",
]

Nav = Literal["portfolio", "review"]
"""The nav entry marked as the current page."""


@dataclass(frozen=True)
class Freshness:
    """How fresh a page's numbers are: computed at `computed_at` (naive UTC; the oldest of the
    results shown), shown at `shown_at`; `refresh_url` asks for them to be computed now."""

    computed_at: datetime
    shown_at: datetime
    refresh_url: str | None = None

    @property
    def age(self) -> str:
        """ "just now", "40 s ago", "3 min ago", "2 h ago"."""
        seconds = max(0, int((self.shown_at - self.computed_at).total_seconds()))
        if seconds < 5:
            return "just now"
        if seconds < 120:
            return f"{seconds} s ago"
        if seconds < 7200:
            return f"{seconds // 60} min ago"
        return f"{seconds // 3600} h ago"

# A line break and the indent after it, in template text (never in a value written into it).
_LAYOUT_BREAK: Final = re.compile(r"\n[ \t]*")


class _OneLine(Extension):
    """Templates are written a tag a line and indented, for people; pages keep none of those
    line breaks and indents, so a page reads exactly as the template's lines joined, and a
    space between two elements is one the template writes on a line."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        for token in stream:
            if token.type == "data":
                token = Token(token.lineno, "data", _LAYOUT_BREAK.sub("", token.value))
            yield token


def _escape(value: object) -> Markup:
    """Every value a template writes, escaped as the pages always have been (`"` as `&quot;`,
    which autoescaping alone would write `&#34;`). Markup, such as a rendered figure or a macro's
    output, is HTML already and passes unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


_ENV: Final = Environment(
    loader=PackageLoader("dashboards", "templates"),
    autoescape=True,
    finalize=_escape,
    undefined=StrictUndefined,
    extensions=[_OneLine],
)
_ENV.globals["theme"] = theme


def render(template: str, /, **context: object) -> str:
    """`template` from dashboards/templates/ rendered with `context` (values escaped)."""
    return _ENV.get_template(template).render(context)


FAVICON_SVG: Final = render("icon.svg")
FAVICON_HREF: Final = "data:image/svg+xml," + urllib.parse.quote(FAVICON_SVG, safe="")
"""The icon every page declares inline (a tick on the theme's blue), percent-encoded whole, so
`#` and quotes cannot end the URL. The service also answers /favicon.ico with it, which
browsers ask for when they show a response that is not a page (the report's JSON, say)."""


def _palette_css() -> str:
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


@cache
def stylesheet() -> str:
    """The pages' stylesheet: the theme's palette, then dashboards/static/landed.css. The
    service serves it at /static/landed.css; an exported review inlines it."""
    rules = importlib.resources.files("dashboards") / "static" / "landed.css"
    return _palette_css() + rules.read_text(encoding="utf-8")


@cache
def _stylesheet_version() -> str:
    # In the stylesheet's URL, so a browser holding a day-old copy fetches the new one as soon
    # as a new version of the service serves different rules.
    return hashlib.sha256(stylesheet().encode()).hexdigest()[:12]


@cache
def plotly_js() -> str:
    """The plotly.min.js bundled with the installed plotly package, for the service to serve
    at /static/plotly.min.js and for self-contained exports to inline."""
    bundle = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    return bundle.read_text(encoding="utf-8")


def _inline_script(text: str) -> Markup:
    # Inlined text must not end the script element early; a JS string or regex reads
    # "<\/script" exactly as "</script".
    return Markup(text.replace("</script", "<\\/script"))


def render_page(
    template: str,
    /,
    *,
    current: Nav | None = None,
    sign_out: bool = True,
    charts: bool = False,
    self_contained: bool = False,
    base_url: str = "",
    review_url: str = "/review",
    **context: object,
) -> str:
    """A whole page from `template`, which extends frame.html: `current` marks its nav entry,
    `charts` loads plotly.js. `self_contained` inlines the stylesheet and plotly.js so the file
    opens anywhere, offline, and leaves out the sign-out link (a file has nobody to sign out);
    `base_url` then starts the nav's links (the service's address, for a file sent by mail)."""
    return render(
        template,
        current=current,
        sign_out=sign_out and not self_contained,
        charts=charts,
        self_contained=self_contained,
        base_url=base_url,
        review_url=review_url,
        favicon_href=FAVICON_HREF,
        stylesheet=Markup(stylesheet()) if self_contained else None,
        stylesheet_url=f"/static/landed.css?v={_stylesheet_version()}",
        plotly_js=_inline_script(plotly_js()) if self_contained and charts else None,
        **context,
    )


def figure_html(fig: go.Figure, div_id: str) -> Markup:
    """A figure's div and the script drawing it (plotly.js itself is loaded once per page)."""
    rendered: str = fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=theme.PLOTLY_CONFIG
    )
    return Markup(rendered)


def plural(count: int, word: str, plural: str | None = None) -> str:
    """A count with its noun agreeing: "1 live launch", "3 live launches", "1,200 users"."""
    return f"{theme.fmt_count(count)} {word if count == 1 else plural or word + 's'}"


def kpi_target(kpi: KpiResult) -> str:
    """The KPI's target as first set, with its direction: "≥ 8.0%", "≤ 3.0 days"."""
    comparator = "≥" if kpi.comparator == ">=" else "≤"
    return f"{comparator} {theme.fmt_metric(kpi.metric, kpi.target)}"


def verdict_counts(report: LaunchReport) -> str:
    """How the launch's KPIs were judged: "3 KPIs: 1 missed, 2 inconclusive"."""
    if not report.kpis:
        return "No KPIs set"
    counts: dict[str, int] = {}
    for kpi in report.kpis:
        counts[kpi.verdict] = counts.get(kpi.verdict, 0) + 1
    parts = [f"{counts[v]} {theme.verdict_label(v).lower()}" for v in theme.VERDICT_LABELS if v in counts]
    return f"{plural(len(report.kpis), 'KPI')}: " + ", ".join(parts)
