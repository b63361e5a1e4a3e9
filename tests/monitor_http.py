"""HTTP for the monitor tests: a client call, and a webhook receiver that is the standard library's
own HTTP server (independent of the monitor's web stack)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def get(url: str, token: str | None = None, data: bytes | None = None, headers: dict | None = None):
    """(status, body) of a GET (or a POST of `data`), HTTP errors included."""
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=h, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class WebhookReceiver:
    """`with WebhookReceiver() as hooks:` a local receiver; `hooks.url(path)` to post to, `hooks.got`
    the (path, content type, JSON body) of every post, `hooks.events()` their "event" fields."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str | None, dict]] = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length", 0))
                got.append((self.path, self.headers.get("Content-Type"), json.loads(self.rfile.read(n))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._srv.server_address[1]}{path}"

    def events(self) -> list[str]:
        return [g[2]["event"] for g in self.got]

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._srv.shutdown()
        self._srv.server_close()
