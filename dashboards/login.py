"""The sign-in page: a form posting a read key to the login route. A pure function of the error
to show and where to go next; templates/login.html lays it out."""

from __future__ import annotations

from dashboards.layout import render_page

__all__ = ["login_page"]


def login_page(error: str | None, *, next_url: str | None = None) -> str:
    """A form posting a read key (field `key`) to /login; `next_url` rides along as a hidden
    field so the app can return the user where they were going. No sign-out link: nobody is
    signed in yet."""
    return render_page("login.html", sign_out=False, error=error, next_url=next_url)
