"""Landed's dashboards: plotly figures drawn from launch report models (figures, timeline,
compare_figures), and the pages the service serves (portfolio, scorecard, compare, review,
login), each a pure function of the models it is given, rendered from the Jinja2 templates in
templates/ with autoescaping on (layout holds what the pages share); and reports and the review
as Markdown (markdown). Nothing here reads storage or clocks."""
