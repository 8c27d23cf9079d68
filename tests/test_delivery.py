"""The weekly review delivered (app/delivery.py): by mail to a real SMTP server on loopback
(aiosmtpd) and to a webhook receiver on loopback, asserting what arrived (subject, recipients,
the Markdown alternative, the attachment opening as the review, the webhook's Markdown); each
week sent once per channel, also across a restart and with two services on one database; a
refused connection retried with backoff until the server is up, and shown on the portfolio
meanwhile; the schedule in its time zone; `landed review --send` through the running service."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from app import launches
from app.cli import main
from app.delivery import Delivery, backoff, review_subject
from app.local_server import serving
from app.main import create_app
from app.page_data import current_week
from app.reports import ReportService
from app.settings import Settings
from app.storage import Storage
from pipelines.launch import LaunchSpec
from tests.helpers.builders import launch_spec
from tests.helpers.live import LIVE, Keys, seed_launches

pytestmark = pytest.mark.backends

LAUNCHED = datetime(2026, 11, 2, 9, tzinfo=UTC)  # live through 2026-W45 to W49


def put_launch(storage: Storage) -> None:
    spec = launch_spec("smart-export", LAUNCHED)
    launches.put_launch(storage, LaunchSpec.model_validate(spec), by="test", now=datetime(2026, 11, 1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.mailbox = Mailbox()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class Webhook:
    """A Slack-compatible incoming webhook on loopback, keeping every JSON body posted."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(orjson.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.stop()


def delivery_settings(base: Settings, smtp_port: int, webhook_url: str | None, **extra: Any) -> Settings:
    """The test's storage settings (either backend) with mail and webhook delivery."""
    return Settings(
        db_path=base.db_path,
        storage=base.storage,
        clickhouse_url=base.clickhouse_url,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        mail_from="landed@example.com",
        review_to="po@example.com, team@example.com",
        webhook_url=webhook_url,
        **extra,
    )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def parts(message: EmailMessage) -> dict[str, Any]:
    """The plain-text and HTML bodies and the attachments (name -> text) of a mail."""
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    attachments = {
        str(part.get_filename()): part.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
        for part in message.iter_attachments()
    }
    return {
        "plain": plain.get_content() if plain is not None else None,  # type: ignore[attr-defined]
        "html": html.get_content() if html is not None else None,  # type: ignore[attr-defined]
        "attachments": attachments,
    }


def test_the_review_arrives_by_mail_and_webhook_once_per_week(
    settings: Settings, storage: Storage, keys: Keys, smtp: SmtpServer, webhook: Webhook
) -> None:
    seed_launches(storage)
    settings = delivery_settings(settings, smtp.port, webhook.url, public_url="https://landed.example.com")
    with TestClient(create_app(settings, storage)) as client:
        auth = {"Authorization": f"Bearer {keys.admin}"}
        sent = client.post("/api/review/send", headers=auth)
        assert sent.status_code == 200, sent.text
        week = sent.json()["week"]
        assert week == current_week(datetime.now(UTC))
        assert [(c["channel"], c["status"], c["attempts"]) for c in sent.json()["channels"]] == [
            ("email", "sent", 1),
            ("webhook", "sent", 1),
        ]
        # Once per week and channel: asking again sends nothing.
        again = client.post("/api/review/send", headers=auth, params={"week": week})
        assert [(c["channel"], c["status"]) for c in again.json()["channels"]] == [
            ("email", "taken"),
            ("webhook", "taken"),
        ]
        listed = client.get("/api/deliveries", headers=auth).json()
        assert {(d["subject"], d["channel"], d["status"]) for d in listed} == {
            (f"review:{week}", "email", "sent"),
            (f"review:{week}", "webhook", "sent"),
        }

    assert len(smtp.mailbox.messages) == 1
    sender, recipients, mail = smtp.mailbox.messages[0]
    assert sender == "landed@example.com"
    assert recipients == ["po@example.com", "team@example.com"]
    assert mail["Subject"] == f"Weekly launch review {week} (1 live launch)"
    assert mail["To"] == "po@example.com, team@example.com"
    body = parts(mail)
    assert body["plain"].startswith(f"# Weekly launch review: {week}")
    assert "## Live Launch" in body["plain"]
    assert f"Scorecard: https://landed.example.com/launches/{LIVE}" in body["plain"]
    assert f'<a href="https://landed.example.com/launches/{LIVE}">Live Launch</a>' in body["html"]
    assert "<script" not in body["html"]
    # The attachment is the review itself: one self-contained page, plotly.js inlined.
    (name, review), *others = body["attachments"].items()
    assert others == []
    assert name == f"landed-review-{week}.html"
    assert f"<title>Weekly review {week} · Landed</title>" in review
    assert f'data-launch="{LIVE}"' in review
    assert "Plotly" in review and '<script src="/static/plotly.min.js">' not in review

    (hook,) = webhook.bodies
    assert hook["text"] == body["plain"].replace("\r\n", "\n")


def test_a_restart_and_a_second_service_on_the_same_database_do_not_send_again(
    settings: Settings, storage: Storage, smtp: SmtpServer, webhook: Webhook
) -> None:
    put_launch(storage)
    settings = delivery_settings(settings, smtp.port, webhook.url)
    monday_10 = datetime(2026, 11, 16, 10)  # past Monday 09:00 UTC of 2026-W47
    first = Delivery(storage, ReportService(storage), settings, clock=Clock(monday_10))
    assert [(o.channel, o.status) for o in first.scheduled()] == [("email", "sent"), ("webhook", "sent")]

    # A restart: a new service (a new app, its own delivery) on the same database.
    with TestClient(create_app(settings, storage)) as client:
        restarted: Delivery = client.app.state.delivery  # type: ignore[attr-defined]
        restarted.deliverer.clock = Clock(monday_10 + timedelta(hours=1))
        assert [o.status for o in restarted.scheduled()] == ["taken", "taken"]

    # Two services racing for the same week: one claim wins per channel.
    tuesday = datetime(2026, 11, 24, 9, 30)  # 2026-W48, past its Monday 09:00
    racers = [Delivery(storage, ReportService(storage), settings, clock=Clock(tuesday)) for _ in range(2)]
    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda d=d: results.append([o.status for o in d.scheduled()])) for d in racers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for statuses in results for status in statuses) == ["sent", "sent", "taken", "taken"]
    subjects = [mail["Subject"] for _, _, mail in smtp.mailbox.messages]
    assert subjects == [
        "Weekly launch review 2026-W47 (1 live launch)",
        "Weekly launch review 2026-W48 (1 live launch)",
    ]
    assert [b["text"].splitlines()[0] for b in webhook.bodies] == [
        "# Weekly launch review: 2026-W47",
        "# Weekly launch review: 2026-W48",
    ]


def test_the_schedule_comes_once_a_week_in_its_time_zone(
    settings: Settings, storage: Storage, smtp: SmtpServer
) -> None:
    put_launch(storage)
    settings = delivery_settings(settings, smtp.port, None, review_timezone="Pacific/Auckland")
    clock = Clock(datetime(2026, 11, 15, 19, 59))  # Monday 08:59 in Auckland (UTC+13), 2026-W47 there
    delivery = Delivery(storage, ReportService(storage), settings, clock=clock)
    assert delivery.local_week() == "2026-W47"
    assert delivery.first_send_of_week(clock.now) == datetime(2026, 11, 15, 20, 0)
    assert delivery.scheduled() == []
    clock.now = datetime(2026, 11, 15, 20, 0)
    assert [(o.channel, o.status) for o in delivery.scheduled()] == [("email", "sent")]
    clock.now = datetime(2026, 11, 18, 12)  # later that week: nothing more
    assert [o.status for o in delivery.scheduled()] == ["taken"]
    (_, _, mail), *_ = smtp.mailbox.messages
    assert mail["Subject"].startswith("Weekly launch review 2026-W47")
    assert len(smtp.mailbox.messages) == 1
    # Cron syntax too: weekdays at 17:30.
    cron = Settings(db_path=":memory:", review_schedule="30 17 * * 1-5")
    assert cron.review_schedule == "30 17 * * 1-5"


def test_a_refused_connection_is_retried_with_backoff_and_shown_until_sent(
    settings: Settings, storage: Storage, keys: Keys
) -> None:
    put_launch(storage)
    port = free_port()  # nothing listens there yet
    delivering = delivery_settings(settings, port, None, delivery_retry_seconds=60)
    clock = Clock(datetime(2026, 11, 16, 9, 0))
    delivery = Delivery(storage, ReportService(storage), delivering, clock=clock)

    (failed,) = delivery.send_review("2026-W47")
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "Connection refused" in (failed.error or "") or "refused" in (failed.error or "").lower()
    assert failed.next_attempt_at == clock.now + timedelta(seconds=60)
    assert backoff(2, 60) == timedelta(seconds=120) and backoff(30, 60) == timedelta(hours=6)

    # Never lost silently: the portfolio shows it with its error and the next attempt.
    with TestClient(create_app(settings, storage)) as client:
        page = client.get("/", headers={"Authorization": f"Bearer {keys.read}"}).text
    assert 'data-subject="review:2026-W47" data-channel="email"' in page
    assert "Not delivered" in page and "Next attempt 2026-11-16 09:01" in page

    assert delivery.retry_due() == []  # not due yet
    clock.now += timedelta(seconds=61)
    (still,) = delivery.retry_due()  # due, and still refused: the wait doubles
    assert (still.status, still.attempts, still.next_attempt_at) == (
        "failed",
        2,
        clock.now + timedelta(seconds=120),
    )

    server = SmtpServer(port).start()  # the mail server comes up
    try:
        clock.now += timedelta(seconds=121)
        (sent,) = delivery.retry_due()
        assert (sent.status, sent.attempts) == ("sent", 3)
        assert delivery.retry_due() == []
        assert [mail["Subject"] for _, _, mail in server.mailbox.messages] == [
            "Weekly launch review 2026-W47 (1 live launch)"
        ]
    finally:
        server.stop()
    (row,) = storage.deliveries()
    assert (row.status, row.attempts, row.last_error, row.next_attempt_at) == ("sent", 3, None, None)


def test_a_send_gives_up_after_the_last_attempt_and_says_so(settings: Settings, storage: Storage) -> None:
    put_launch(storage)
    settings = delivery_settings(settings, free_port(), None, delivery_max_attempts=1)
    delivery = Delivery(storage, ReportService(storage), settings, clock=Clock(datetime(2026, 11, 16, 9)))
    (failed,) = delivery.send_review("2026-W47")
    assert (failed.status, failed.next_attempt_at) == ("failed", None)
    assert storage.due_deliveries(datetime(2027, 1, 1)) == []
    # By hand, a failed send is tried again at once.
    (again,) = delivery.send_review("2026-W47", by_hand=True)
    assert (again.status, again.attempts) == ("failed", 2)


def test_landed_review_send_goes_through_the_running_service(
    settings: Settings,
    storage: Storage,
    keys: Keys,
    smtp: SmtpServer,
    webhook: Webhook,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_launch(storage)
    settings = delivery_settings(settings, smtp.port, webhook.url)
    with serving(create_app(settings, storage)) as url:
        argv = ["review", "--send", "--week", "2026-W47", "--url", url, "--key", keys.admin]
        assert main(argv) == 0
        assert capsys.readouterr().out.splitlines() == [
            "2026-W47 review sent by email",
            "2026-W47 review sent by webhook",
        ]
        assert main(argv) == 0
        assert "already sent by email" in capsys.readouterr().out
        assert main(["review", "--send", "--url", url, "--key", keys.read]) == 1
        assert capsys.readouterr().err.startswith("landed: ")
    assert len(smtp.mailbox.messages) == 1 and len(webhook.bodies) == 1


def test_sending_without_a_channel_is_refused_naming_the_settings(client: TestClient, keys: Keys) -> None:
    response = client.post("/api/review/send", headers={"Authorization": f"Bearer {keys.admin}"})
    assert response.status_code == 409
    assert "LANDED_SMTP_URL" in response.json()["detail"]
    bad = client.post(
        "/api/review/send", params={"week": "2026-47"}, headers={"Authorization": f"Bearer {keys.admin}"}
    )
    assert bad.status_code == 422 and "week" in bad.json()["message"]


def test_settings_refuse_incomplete_or_malformed_delivery(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    with pytest.raises(ValueError, match="LANDED_MAIL_FROM and LANDED_REVIEW_TO") as incomplete:
        Settings(db_path=db, smtp_url="smtp://user:hunter2@mail.example.com:587")
    assert "hunter2" not in str(incomplete.value)
    with pytest.raises(ValueError, match="smtp://"):
        Settings(db_path=db, smtp_url="http://mail.example.com")
    with pytest.raises(ValueError, match="time zone"):
        Settings(db_path=db, review_timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="day and time"):
        Settings(db_path=db, review_schedule="someday")
    assert review_subject("2026-W47") == "review:2026-W47"
