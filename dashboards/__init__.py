"""Landed's dashboards: plotly figures drawn from launch report models, and the HTML pages
(portfolio, scorecard, weekly review, login) the service serves. Nothing here reads storage
or clocks; every page is a pure function of the models it is given."""
