"""Builds the application: `create_app(settings)` opens the storage and mounts the routes."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.delivery import background_work
from app.http import IngestCors, install_error_handlers
from app.observability import Metrics, RequestObserver
from app.ratelimit import RateLimiter
from app.reports import ReportService
from app.routes import (
    admin,
    compare,
    decisions,
    delivery,
    editor,
    exports,
    ingest,
    launches,
    ops,
    pages,
    reports,
)
from app.sessions import Sessions
from app.settings import Settings
from app.snapshots import Refresher, Snapshots
from app.storage import Storage
from dashboards.figures import prepare_rendering


def _preload_optional_modules() -> None:
    # pandas, when installed, is imported lazily by libraries the request threads use; two
    # threads importing it for the first time at once were seen to get a half-initialised
    # module (a 500 under load), so it is imported once here, before serving.
    if importlib.util.find_spec("pandas") is not None:
        importlib.import_module("pandas")


def create_app(settings: Settings, storage: Storage | None = None) -> FastAPI:
    """The service for `settings`; pass `storage` to share an open database (tests, demo)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = storage is None
        app.state.storage = storage or Storage.open(settings)
        app.state.reports = ReportService(app.state.storage, observer=metrics)
        app.state.snapshots = Snapshots(
            app.state.storage,
            app.state.reports,
            refresh_seconds=settings.refresh_seconds,
            on_refresh=metrics.refreshed,
        )
        metrics.watch_snapshots(app.state.snapshots.oldest_age)
        refresher = Refresher(app.state.snapshots)
        app.state.sessions = Sessions.for_service(settings, app.state.storage)
        metrics.watch(app.state.storage)
        prepare_rendering()
        _preload_optional_modules()
        app.state.delivery, background = background_work(
            app.state.storage, app.state.reports, app.state.snapshots, settings
        )
        refresher.start()
        background.start()
        try:
            yield
        finally:
            background.stop()
            refresher.stop()
            metrics.unwatch(app.state.storage)
            if own:
                app.state.storage.close()

    app = FastAPI(
        title="Landed",
        summary="Did the launch land? Adoption and conversion against KPI targets locked before launch.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.rate_limiter = RateLimiter(
        settings.rate_limit_events_per_second, settings.rate_limit_burst_events
    )
    app.state.ip_rate_limiter = RateLimiter(
        settings.rate_limit_ip_events_per_second, settings.rate_limit_ip_burst_events
    )
    if storage is not None:
        app.state.storage = storage
    install_error_handlers(app, retry_after_seconds=settings.retry_after_seconds)
    app.add_middleware(
        IngestCors,
        wildcard_prefixes=ingest.SEGMENT_PATH_PREFIXES,
        credentialed_prefixes=ingest.POSTHOG_PATH_PREFIXES,
        max_age=settings.cors_max_age_seconds,
    )
    # Added last, so outermost: it sees every request, CORS preflights included.
    app.add_middleware(RequestObserver, metrics=metrics, log_level=settings.access_log_level)
    app.include_router(ingest.router)
    app.include_router(launches.router)
    app.include_router(reports.router)
    app.include_router(compare.router)
    app.include_router(exports.router)
    app.include_router(admin.router)
    app.include_router(delivery.router)
    app.include_router(decisions.router)
    app.include_router(ops.router)
    app.include_router(editor.router)  # before pages: /launches/new is no scorecard
    app.include_router(pages.router)
    return app
