"""Real processes for end-to-end tests: an ``mlflow server`` and a Celery worker."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def start_mlflow_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    """Start ``mlflow server`` on 127.0.0.1:port with a SQLite store under ``root``.

    Webhook delivery to 127.0.0.1 is allowed explicitly: MLflow refuses private addresses and
    plain http by default (SSRF protection), which is right in production, not on loopback.
    """
    root.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    }
    log = (root / "server.log").open("ab")
    process = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url), timeout=120, what=f"mlflow server on {url}")
    except AssertionError:
        stop(process)
        raise AssertionError((root / "server.log").read_text()[-3000:]) from None
    return process


def start_celery_worker(env: dict[str, str], queue: str, log_path: Path) -> subprocess.Popen[bytes]:
    """A real worker process consuming only ``queue`` (so it never steals anyone else's work)."""
    log = log_path.open("ab")
    return subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--queues",
            queue,
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{queue}@%h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and every child it started (uvicorn workers, Celery pool)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and every child it started: no shutdown handler runs, nothing acks."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


# Headers about one connection (and Host, set anew), which a proxy does not pass on.
_NOT_PASSED_ON = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
}


class HoldingProxy:
    """An HTTP proxy in front of ``upstream`` that can hold a response: the request reaches
    the upstream server (which acts on it), but the caller does not hear back until
    ``release()``. It makes a client wait at a known point of its work, with no hook in it.

    ``hold(method, path)`` picks the requests to hold; ``held`` is set once one is held.
    """

    def __init__(self, upstream: str, hold: Callable[[str, str], bool] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.hold = hold
        self.held = threading.Event()
        self._released = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Answer the held requests, and hold no more."""
        self.hold = None
        self._released.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _NOT_PASSED_ON}
        response = requests.request(
            handler.command,
            self.upstream + handler.path,
            headers={**headers, "Accept-Encoding": "identity"},
            data=body,
            timeout=60,
            allow_redirects=False,
        )
        hold = self.hold
        if hold is not None and hold(handler.command, handler.path.split("?")[0]):
            self.held.set()
            self._released.wait(timeout=600)
        handler.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in _NOT_PASSED_ON | {"content-length", "content-encoding"}:
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(response.content)))
        handler.end_headers()
        handler.wfile.write(response.content)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                with contextlib.suppress(OSError):  # the client died while it was held
                    proxy._forward(self)

            # http.server's own names for the method handlers
            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (inherited)
                pass  # quiet: the test's output is the worker's log

        return Handler
