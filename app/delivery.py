"""The weekly review delivered, and alerts sent, through the configured channels: email over
SMTP (`LANDED_SMTP_URL`, the standard library's `email` and `smtplib`) and a Slack-compatible
incoming webhook (`LANDED_WEBHOOK_URL`), on a schedule kept by APScheduler.

Each subject (a week's review, an alert) goes out once per channel: before sending, the
service claims it with a row keyed by (subject, channel) in the database, so neither a restart
nor a second service process sends it again. A failed send keeps its row, with its error and
the time of the next attempt (the wait doubles each time, from `LANDED_DELIVERY_RETRY_SECONDS`
up to 6 hours, for `LANDED_DELIVERY_MAX_ATTEMPTS` attempts), and the portfolio shows it until
it is sent; a sender that stopped mid-send (its lease ran out) is retried the same way.

The review is sent when its schedule (`LANDED_REVIEW_SCHEDULE` in `LANDED_REVIEW_TIMEZONE`)
first comes in each week, for that week (the ISO week of the schedule's time zone), and, if the
service was down then, as soon as it is back that week.
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import partial
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import httpx
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from app.errors import Conflict
from app.page_data import current_week, review_file, review_sections, scorecard_url
from app.reports import ReportService
from app.settings import Settings
from app.snapshots import Snapshots
from app.storage import AlertRecord, Storage
from dashboards.review import review_mail_page
from pipelines.times import naive_utc

if TYPE_CHECKING:
    from app.alerts import AlertEvaluator

log = logging.getLogger("landed.delivery")

LEASE = timedelta(minutes=10)  # a send taking longer is taken to have died with its process
MAX_WAIT = timedelta(hours=6)
SEND_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Message:
    """What one subject sends: `text` (Markdown) is the webhook's text and the mail's
    plain-text part; email adds `html` as the alternative and `attachment` (name, HTML)."""

    subject: str
    text: str
    html: str | None = None
    attachment: tuple[str, str] | None = None


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> None:
        """Sends or raises (OSError, smtplib.SMTPException, httpx.HTTPError)."""
        ...


class EmailChannel:
    """Mail through an SMTP server: smtp:// (STARTTLS when offered) or smtps:// (TLS)."""

    name = "email"

    def __init__(
        self, url: str, sender: str, recipients: Sequence[str], *, timeout: float = SEND_TIMEOUT_SECONDS
    ):
        parts = urlsplit(url)
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else ""
        self.sender = sender
        self.recipients = list(recipients)
        self._timeout = timeout

    def mail(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        mail.set_content(message.text, subtype="plain", charset="utf-8")
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html", charset="utf-8")
        if message.attachment is not None:
            name, content = message.attachment
            mail.add_attachment(content.encode("utf-8"), maintype="text", subtype="html", filename=name)
        return mail

    def send(self, message: Message) -> None:
        mail = self.mail(message)
        context = ssl.create_default_context()
        server: smtplib.SMTP
        if self._tls:
            server = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        else:
            server = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        with server:
            server.ehlo()
            if not self._tls and server.has_extn("starttls"):
                server.starttls(context=context)
                server.ehlo()
            if self._user:
                server.login(self._user, self._password)
            server.send_message(mail)


class WebhookChannel:
    """A Slack-compatible incoming webhook: a JSON body {"text": Markdown}."""

    name = "webhook"

    def __init__(self, url: str, *, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self._url = url
        self._timeout = timeout

    def send(self, message: Message) -> None:
        response = httpx.post(
            self._url,
            json={"text": message.text},
            timeout=self._timeout,
            headers={"User-Agent": "landed"},
        )
        response.raise_for_status()


def configured_channels(settings: Settings) -> list[Channel]:
    channels: list[Channel] = []
    if settings.smtp_url is not None and settings.mail_from:
        channels.append(
            EmailChannel(
                settings.smtp_url.get_secret_value().strip(), settings.mail_from, settings.review_recipients
            )
        )
    if settings.webhook_url is not None:
        channels.append(WebhookChannel(settings.webhook_url.get_secret_value().strip()))
    return channels


def describe_error(error: BaseException) -> str:
    """A send's error for the record and the portfolio, never holding a secret (a webhook's
    address is one; httpx names it in its status errors)."""
    if isinstance(error, httpx.HTTPStatusError):
        return f"the webhook answered {error.response.status_code}"
    if isinstance(error, httpx.HTTPError):
        return f"the webhook could not be reached: {type(error).__name__} {error}".strip()
    if isinstance(error, smtplib.SMTPResponseException):
        text = (
            error.smtp_error.decode("utf-8", "replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        return f"the mail server refused: {error.smtp_code} {text}"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Outcome:
    """What became of one subject on one channel: sent, failed, or taken (already sent, or
    being sent by another process)."""

    channel: str
    status: str
    attempts: int = 0
    error: str | None = None
    next_attempt_at: datetime | None = None


def backoff(attempt: int, first: float) -> timedelta:
    """The wait after failed attempt number `attempt`: doubling from `first`, up to 6 hours."""
    return min(timedelta(seconds=first * 2 ** (attempt - 1)), MAX_WAIT)


class Deliverer:
    """Sends subjects through channels, once each, claiming before sending."""

    def __init__(
        self,
        storage: Storage,
        channels: Sequence[Channel],
        *,
        retry_seconds: float,
        max_attempts: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.storage = storage
        self.channels = list(channels)
        self.retry_seconds = retry_seconds
        self.max_attempts = max_attempts
        self.clock = clock or (lambda: naive_utc(datetime.now(UTC)))
        # Who holds a claim, for the record: one name per service process (and per deliverer).
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    def send(
        self,
        subject: str,
        build: Callable[[], Message],
        *,
        retry: bool = False,
        force: bool = False,
        only: Collection[str] | None = None,
    ) -> list[Outcome]:
        """Claims `subject` on each channel (those in `only`), builds the message once if any
        claim was won, sends it and records how each went."""
        outcomes: list[Outcome] = []
        claimed: list[tuple[Channel, int]] = []
        for channel in self.channels:
            if only is not None and channel.name not in only:
                continue
            now = self.clock()
            attempt = self.storage.claim_delivery(
                subject,
                channel.name,
                claimed_by=self.process_id,
                now=now,
                lease_until=now + LEASE,
                retry=retry,
                force=force,
            )
            if attempt is None:
                outcomes.append(Outcome(channel.name, "taken"))
            else:
                claimed.append((channel, attempt))
        if not claimed:
            return outcomes
        message: Message | None = None
        problem: str | None = None
        try:
            message = build()
        except Exception as broken:  # the claim must still end as a failure on record, never vanish
            log.exception("the message of %s could not be made", subject)
            problem = f"the message could not be made: {describe_error(broken)}"
        for channel, attempt in claimed:
            failed = problem
            if message is not None:
                try:
                    channel.send(message)
                except (OSError, smtplib.SMTPException, httpx.HTTPError) as failure:
                    failed = describe_error(failure)
            outcomes.append(self._record(subject, channel.name, attempt, failed))
        return outcomes

    def _record(self, subject: str, channel: str, attempt: int, error: str | None) -> Outcome:
        now = self.clock()
        retry_at = None
        if error is not None and attempt < self.max_attempts:
            retry_at = now + backoff(attempt, self.retry_seconds)
        self.storage.record_delivery_result(
            subject, channel, claimed_by=self.process_id, now=now, error=error, next_attempt_at=retry_at
        )
        if error is None:
            log.info("sent %s by %s", subject, channel)
            return Outcome(channel, "sent", attempt)
        log.warning(
            "sending %s by %s failed (attempt %d): %s; %s",
            subject,
            channel,
            attempt,
            error,
            f"next attempt at {retry_at:%Y-%m-%d %H:%M:%S}Z" if retry_at else "no more attempts",
        )
        return Outcome(channel, "failed", attempt, error, retry_at)


ALERT_TITLES = {
    "silent_signal": "nobody can notice it",
    "verdict_changed": "a verdict changed",
    "off_path": "off the path",
}
REVIEW_PREFIX = "review:"
ALERT_PREFIX = "alert:"


def review_subject(week: str) -> str:
    return REVIEW_PREFIX + week


def alert_subject(alert: AlertRecord) -> str:
    return f"{ALERT_PREFIX}{alert.launch_key}/{alert.kind}/{alert.subject}/{alert.occurrence}"


class Delivery:
    """The weekly review and alerts for one service: what to send, when, and through what."""

    def __init__(
        self,
        storage: Storage,
        reports: ReportService,
        settings: Settings,
        *,
        channels: Sequence[Channel] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.storage = storage
        self.reports = reports
        self.settings = settings
        self.deliverer = Deliverer(
            storage,
            configured_channels(settings) if channels is None else channels,
            retry_seconds=settings.delivery_retry_seconds,
            max_attempts=settings.delivery_max_attempts,
            clock=clock,
        )
        self.zone = ZoneInfo(settings.review_timezone)
        self.trigger = CronTrigger.from_crontab(settings.review_schedule, timezone=self.zone)
        self.base_url = settings.public_url or f"http://{settings.host}:{settings.port}"
        # One send or retry pass at a time in this process (the schedule, the pump and a
        # send by hand may meet); the claims keep other processes apart.
        self._lock = threading.Lock()

    @property
    def channels(self) -> list[str]:
        return [channel.name for channel in self.deliverer.channels]

    def now(self) -> datetime:
        return self.deliverer.clock()

    # -- the review --------------------------------------------------------------------------

    def local_week(self, now: datetime | None = None) -> str:
        """The ISO week the schedule's time zone is in at `now`."""
        moment = (now or self.now()).replace(tzinfo=UTC).astimezone(self.zone)
        return current_week(moment)

    def review_message(self, week: str) -> Message:
        now = self.now()
        sections = review_sections(self.storage, self.reports, week=week, now=now, base_url=self.base_url)
        text = review_file(week, sections, fmt="md", now=now, base_url=self.base_url)
        attachment = review_file(week, sections, fmt="html", now=now, base_url=self.base_url)
        html = review_mail_page(week, sections, generated_at=now, base_url=self.base_url)
        launches = f"{len(sections)} live launch" + ("" if len(sections) == 1 else "es")
        return Message(
            subject=f"Weekly launch review {week} ({launches})",
            text=text,
            html=html,
            attachment=(f"landed-review-{week}.html", attachment),
        )

    def send_review(self, week: str | None = None, *, by_hand: bool = False) -> list[Outcome]:
        """Sends the review of `week` (default: this week in the schedule's time zone) on each
        channel it was not sent on. By hand, a failed send is retried at once."""
        if not self.deliverer.channels:
            raise Conflict(
                "no delivery channel is configured",
                "set LANDED_SMTP_URL, LANDED_MAIL_FROM and LANDED_REVIEW_TO, or LANDED_WEBHOOK_URL",
            )
        week = week or self.local_week()
        with self._lock:
            return self.deliverer.send(
                review_subject(week), lambda: self.review_message(week), retry=by_hand, force=by_hand
            )

    def first_send_of_week(self, now: datetime) -> datetime:
        """When the schedule first comes in the week of `now` (naive UTC), in its time zone."""
        local = now.replace(tzinfo=UTC).astimezone(self.zone)
        monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        fire = self.trigger.get_next_fire_time(None, monday)
        assert fire is not None
        return naive_utc(fire)

    def scheduled(self) -> list[Outcome]:
        """The schedule's run (and every pump's): this week's review, if its time has come and
        it was not sent yet on a channel."""
        if not self.deliverer.channels:
            return []
        now = self.now()
        if now < self.first_send_of_week(now):
            return []
        week = self.local_week(now)
        with self._lock:
            return self.deliverer.send(review_subject(week), lambda: self.review_message(week))

    # -- alerts ------------------------------------------------------------------------------

    def alert_message(self, alert: AlertRecord) -> Message:
        url = scorecard_url(alert.launch_key, self.base_url)
        name = alert.message.split(":", 1)[0]
        return Message(
            subject=f"Landed alert: {name}: {ALERT_TITLES.get(alert.kind, alert.kind)}",
            text=f"{alert.message}\n\nScorecard: {url}\n",
        )

    def send_alerts(self, alerts: Sequence[AlertRecord]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        with self._lock:
            for alert in alerts:
                outcomes += self.deliverer.send(alert_subject(alert), partial(self.alert_message, alert))
        return outcomes

    # -- retries -----------------------------------------------------------------------------

    def _builder(self, subject: str) -> Callable[[], Message] | None:
        if subject.startswith(REVIEW_PREFIX):
            week = subject.removeprefix(REVIEW_PREFIX)
            return lambda: self.review_message(week)
        if subject.startswith(ALERT_PREFIX):
            launch_key, _, _ = subject.removeprefix(ALERT_PREFIX).partition("/")
            for alert in self.storage.alerts(launch_key):
                if alert_subject(alert) == subject:
                    return lambda: self.alert_message(alert)
        return None

    def retry_due(self) -> list[Outcome]:
        """Attempts again every failed send whose time has come, and lapsed ones."""
        due: dict[str, list[str]] = {}
        for subject, channel in self.storage.due_deliveries(self.now()):
            due.setdefault(subject, []).append(channel)
        outcomes: list[Outcome] = []
        for subject, channels in due.items():
            build = self._builder(subject)
            if build is None:
                continue
            with self._lock:
                outcomes += self.deliverer.send(subject, build, retry=True, only=channels)
        return outcomes

    def pump(self) -> None:
        """The background pass: this week's review if due and unsent, then due retries."""
        try:
            self.scheduled()
            self.retry_due()
        except Exception:
            log.exception("delivery pass failed")


class Background:
    """The service's scheduled work, on APScheduler: the review on its schedule, a pass every
    few seconds for retries (and a review missed while the service was down), and the alert
    evaluation every `LANDED_ALERT_SECONDS`."""

    def __init__(self, delivery: Delivery, alerts: AlertEvaluator | None, settings: Settings) -> None:
        self.delivery = delivery
        self.alerts = alerts
        self.settings = settings
        self.scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        jobs = bool(self.delivery.channels) or (self.alerts is not None and self.settings.alert_seconds > 0)
        if not jobs or self.scheduler is not None:
            return
        scheduler = BackgroundScheduler(timezone=self.delivery.zone)
        if self.delivery.channels:
            scheduler.add_job(
                self.delivery.pump,
                self.delivery.trigger,
                id="review",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )
            pump_seconds = max(1.0, min(30.0, self.settings.delivery_retry_seconds / 2))
            scheduler.add_job(
                self.delivery.pump,
                "interval",
                seconds=pump_seconds,
                id="pump",
                coalesce=True,
                max_instances=1,
            )
        if self.alerts is not None and self.settings.alert_seconds > 0:
            scheduler.add_job(
                self.alerts.run,
                "interval",
                seconds=self.settings.alert_seconds,
                id="alerts",
                coalesce=True,
                max_instances=1,
            )
        scheduler.start()
        self.scheduler = scheduler

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None


def background_work(
    storage: Storage, reports: ReportService, snapshots: Snapshots, settings: Settings
) -> tuple[Delivery, Background]:
    """The service's delivery and its scheduled work (started by the caller): alerts are
    evaluated from `snapshots` and sent through the same channels as the review."""
    from app.alerts import AlertEvaluator

    delivery = Delivery(storage, reports, settings)
    alerts = AlertEvaluator(storage, snapshots, deliver=delivery.send_alerts)
    return delivery, Background(delivery, alerts, settings)
