"""Dashboard sign-in is a signed session that expires, holds the key's id and scope but never
its secret, is refused once the key is revoked (through a real uvicorn), survives a restart,
and is Secure over HTTPS; every page offers a way to sign out.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from app.main import create_app
from app.sessions import LEGACY_KEY_COOKIE, SESSION_COOKIE, Sessions
from app.settings import Settings
from app.storage import Storage
from tests.helpers.live import LIVE, Keys, LiveServer, seed_launches

PAGES = ["/", f"/launches/{LIVE}", "/review"]


def sign_in(client: TestClient | httpx.Client, key: str) -> httpx.Response:
    response = client.post("/login", data={"key": key, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


def session_header(response: httpx.Response) -> str:
    [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")]
    return cookie


def token_of(response: httpx.Response) -> str:
    return session_header(response).split(";")[0].split("=", 1)[1]


def test_the_session_cookie_is_signed_holds_no_secret_and_is_httponly_lax(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    response = sign_in(client, keys.read)
    header = session_header(response)
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "samesite=lax" in header.lower()
    assert "secure" not in attributes, "plain HTTP: a Secure cookie would never come back"
    assert "max-age=43200" in header.lower(), "12 hours by default"
    token = token_of(response)
    assert keys.read not in token
    # What it says, readable (signed, not encrypted): the key's id and scope, nothing more.
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    key_id = storage.authenticate(keys.read, ("read",)).key_id
    assert decoded == f'{{"key_id":"{key_id}","scope":"read"}}'


def test_a_forged_or_tampered_session_is_refused(client: TestClient, storage: Storage, keys: Keys) -> None:
    seed_launches(storage)
    token = token_of(sign_in(client, keys.read))
    client.cookies.clear()
    admin = storage.authenticate(keys.admin, ("admin",))
    forged = Sessions("not the service's secret", hours=12).token(admin)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (forged, tampered, "", "garbage"):
        for path in PAGES:
            response = client.get(path, headers={"Cookie": f"{SESSION_COOKIE}={bad}"}, follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
        api = client.get("/api/launches", headers={"Cookie": f"{SESSION_COOKIE}={bad}"})
        assert api.status_code == 401


def test_a_session_expires(
    client: TestClient, storage: Storage, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_launches(storage)
    token = token_of(sign_in(client, keys.read))
    client.cookies.clear()
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    assert client.get("/", headers=cookie, follow_redirects=False).status_code == 200
    later = TimestampSigner.get_timestamp

    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later(self) + 12 * 3600 + 1)
    response = client.get("/", headers=cookie, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_session_hours_is_a_setting(tmp_path: Path) -> None:
    settings = Settings(db_path=str(tmp_path / "h.duckdb"), session_hours=0.5)
    with Storage.open(settings) as storage, TestClient(create_app(settings, storage)) as client:
        read = storage.create_key("team", "read")[1]
        assert "max-age=1800" in session_header(sign_in(client, read)).lower()


def test_a_revoked_keys_session_is_refused_on_its_next_request(live_server: LiveServer, keys: Keys) -> None:
    seed_launches(live_server.storage)
    with httpx.Client(base_url=live_server.url, timeout=30) as browser:
        sign_in(browser, keys.read)
        assert browser.get("/", follow_redirects=False).status_code == 200
        assert browser.get("/api/launches").status_code == 200
        revoked = httpx.delete(
            f"{live_server.url}/api/keys/dashboards", headers={"Authorization": f"Bearer {keys.admin}"}
        )
        assert revoked.status_code == 200
        page = browser.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert browser.get("/api/launches").status_code == 401


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    settings = Settings(db_path=str(tmp_path / "r.duckdb"))
    with Storage.open(settings) as storage:
        read = storage.create_key("team", "read")[1]
        with TestClient(create_app(settings, storage)) as client:
            token = token_of(sign_in(client, read))
    # The signing secret was made once and kept in the database: a new process accepts it.
    with Storage.open(settings) as storage, TestClient(create_app(settings, storage)) as client:
        page = client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={token}"}, follow_redirects=False)
        assert page.status_code == 200


def test_a_configured_secret_signs_the_sessions(tmp_path: Path) -> None:
    settings = Settings(db_path=str(tmp_path / "c.duckdb"), session_secret="correct horse battery staple")
    with Storage.open(settings) as storage, TestClient(create_app(settings, storage)) as client:
        read = storage.create_key("team", "read")[1]
        token = token_of(sign_in(client, read))
        key = storage.authenticate(read, ("read",))
    assert Sessions("correct horse battery staple", hours=12).read(token) == (key.key_id, "read")
    assert Sessions("another secret", hours=12).read(token) is None


def test_the_cookie_is_secure_over_https(settings: Settings, storage: Storage, keys: Keys) -> None:
    with TestClient(create_app(settings, storage), base_url="https://landed.example") as client:
        header = session_header(sign_in(client, keys.read))
        basic = client.get("/", auth=(keys.read, ""), follow_redirects=False)
    assert "secure" in {part.strip().lower() for part in header.split(";")}
    assert "secure" in session_header(basic).lower()


def test_http_basic_on_a_page_signs_in_with_a_session(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    seed_launches(storage)
    response = client.get("/", auth=(keys.read, ""), follow_redirects=False)
    assert response.status_code == 200
    assert keys.read not in session_header(response)
    client.cookies.clear()
    cookie = {"Cookie": f"{SESSION_COOKIE}={token_of(response)}"}
    assert client.get(f"/launches/{LIVE}", headers=cookie, follow_redirects=False).status_code == 200


def test_every_page_links_to_sign_out_and_signing_out_clears_the_cookies(
    client: TestClient, storage: Storage, keys: Keys
) -> None:
    seed_launches(storage)
    sign_in(client, keys.read)
    for path in PAGES:
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 200, path
        assert '<a class="sign-out" href="/logout">Sign out</a>' in page.text, path
    assert "Sign out" not in client.get("/login").text
    out = client.get("/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    cleared = {c.split("=")[0]: c.lower() for c in out.headers.get_list("set-cookie")}
    assert set(cleared) == {SESSION_COOKIE, LEGACY_KEY_COOKIE}
    assert all("max-age=0" in c for c in cleared.values())
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 303
