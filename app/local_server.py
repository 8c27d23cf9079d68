"""The service on a free port of 127.0.0.1, served by uvicorn in a thread of this process.

For the tests and benchmarks that need real HTTP (SDKs, a browser, load) while sharing the
caller's open storage; `landed serve` runs uvicorn in the foreground instead.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at this moment."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: Any, *, start_seconds: float = 10) -> Iterator[str]:
    """Serves the ASGI `app` until the block ends; yields its base URL once it accepts
    connections. Raises RuntimeError if it has not started within `start_seconds`."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="landed-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_seconds
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"uvicorn did not start within {start_seconds:g} s")
            time.sleep(0.02)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
