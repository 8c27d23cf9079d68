"""Builds the application: `create_app(settings)` opens the storage and mounts the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.http import install_error_handlers
from app.ratelimit import RateLimiter
from app.reports import ReportService
from app.routes import ingest, launches, pages, reports
from app.settings import Settings
from app.storage import Storage


def create_app(settings: Settings, storage: Storage | None = None) -> FastAPI:
    """The service for `settings`; pass `storage` to share an open database (tests, demo)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = storage is None
        app.state.storage = storage or Storage(
            settings.db_path, max_events_per_commit=settings.commit_max_events
        )
        app.state.reports = ReportService(app.state.storage)
        try:
            yield
        finally:
            if own:
                app.state.storage.close()

    app = FastAPI(
        title="Landed",
        summary="Did the launch land? Adoption and conversion against KPI targets locked before launch.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(
        settings.rate_limit_events_per_second, settings.rate_limit_burst_events
    )
    if storage is not None:
        app.state.storage = storage
    install_error_handlers(app, retry_after_seconds=settings.retry_after_seconds)
    app.include_router(ingest.router)
    app.include_router(launches.router)
    app.include_router(reports.router)
    app.include_router(pages.router)
    return app
