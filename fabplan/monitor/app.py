"""The monitor's web application (starlette): one page, its JSON, server-sent events, one control.

    GET  /                  the page (plain HTML + JS, no build step)
    GET  /api/state         the run's state as JSON (what the page draws; scripts may poll it)
    GET  /api/events        the same JSON pushed as server-sent events when it changes (and every
                            few seconds, so the ages move)
    GET  /api/map           the map's static part (disc centres or the bin grid, region, keep-outs)
    GET  /api/map/state     one state code per disc (or per bin), base64
    GET  /api/disc          ?seq=N | ?id=DISC | ?x=&y= (nearest disc, map coordinates): its records
    POST /api/pause         request a pause (header "X-Fabplan-Confirm: pause"): the path of Ctrl+C

Nothing else touches the run. A token, when set (always when serving beyond loopback), is required
on every /api/ call as "Authorization: Bearer TOKEN" or "?token=TOKEN" (EventSource cannot send
headers); the page asks for it. The confirm header also keeps a cross-site form from pausing a run:
a custom header forces a CORS preflight, which this server never approves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fabplan.monitor.state import Monitor

log = logging.getLogger("fabplan.monitor")

SSE_KEEPALIVE_S = 2.0
STATE_MAX_AGE_S = 0.9  # one state computation per second, shared by every page and script
END_GRACE_S = 0.5  # after the run's end: at most this long for open pages to take the final state and map


def _page() -> str:
    return resources.files("fabplan.monitor").joinpath("static/index.html").read_text(encoding="utf-8")


class _TokenGate:
    """Pure ASGI middleware (streams pass straight through): /api/ needs the token when one is set."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if self.token and scope["type"] == "http" and scope["path"].startswith("/api/"):
            request = Request(scope)
            got = request.query_params.get("token", "")
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                got = auth[7:].strip()
            if not secrets.compare_digest(got.encode(), self.token.encode()):
                await JSONResponse({"error": "token required"}, status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(monitor: Monitor, *, token: str | None = None,
               request_pause: Callable[[str], dict[str, Any]] | None = None, poll_s: float = 1.0,
               on_update: Callable[[Monitor], None] | None = None, end_fd: int | None = None,
               on_end: Callable[[], None] | None = None) -> Starlette:
    """The app for `monitor`; a background task polls the journal every `poll_s` seconds and calls
    `on_update(monitor)` after each look (the notifier hangs there).

    `end_fd` (beside a run: the pipe from the run's process) becomes readable when the run is over,
    or its process gone: the monitor then takes its last look at once, pushes that final state to
    every open page, and calls `on_end()` (the server stops). So the run never waits for a poll tick
    or a push interval to be sure its end reached the page."""

    monitor.pause_allowed = request_pause is not None
    closing = asyncio.Event()  # set once the last look is taken: streams push it and end
    streams = [0]  # event streams open now
    map_served = [0.0]  # monotonic time of the last /api/map/state answer

    async def finish() -> None:
        import anyio

        t0 = time.monotonic()
        try:
            await anyio.to_thread.run_sync(monitor.update)
            if on_update is not None:
                await anyio.to_thread.run_sync(on_update, monitor)
        except Exception:
            log.exception("monitor: the last look at %s failed", monitor.path)
        pages = streams[0]
        closed_at = time.monotonic()
        closing.set()
        # the streams push the final state and end; a page then fetches the final map once
        deadline = closed_at + END_GRACE_S
        while time.monotonic() < deadline and (streams[0] or (pages and map_served[0] < closed_at)):
            await asyncio.sleep(0.02)
        log.info("monitor: the run is over; its last state reached %d open page(s) %.2f s after the run's end",
                 pages, time.monotonic() - t0)
        if on_end is not None:
            on_end()

    async def poll_loop() -> None:
        import anyio

        while True:
            try:
                await anyio.to_thread.run_sync(monitor.update)
                if on_update is not None:
                    await anyio.to_thread.run_sync(on_update, monitor)
            except Exception:  # the page keeps serving; the error is in the log
                log.exception("monitor: reading %s failed", monitor.path)
            await asyncio.sleep(poll_s)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(poll_loop())
        finishing: list[asyncio.Task] = []

        def run_is_over() -> None:
            try:
                data = os.read(end_fd, 4096)
            except OSError:
                data = b""
            if not data or b"end" in data:  # "end" from the run, or EOF: its process is gone
                loop.remove_reader(end_fd)
                if not finishing:
                    finishing.append(asyncio.create_task(finish()))

        if end_fd is not None:
            loop.add_reader(end_fd, run_is_over)
        try:
            yield
        finally:
            if end_fd is not None:
                loop.remove_reader(end_fd)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def page(request: Request) -> Response:
        return HTMLResponse(_page(), headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        return JSONResponse(monitor.state(max_age_s=STATE_MAX_AGE_S))

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def events(request: Request) -> Response:
        async def stream():
            streams[0] += 1
            try:
                sent_version, sent_at = None, 0.0
                yield "retry: 2000\n\n"
                while True:
                    final = closing.is_set()
                    v = monitor.model.version
                    now = time.monotonic()
                    if final or v != sent_version or now - sent_at >= SSE_KEEPALIVE_S:
                        sent_version, sent_at = v, now
                        st = monitor.state(max_age_s=0.0 if final else STATE_MAX_AGE_S)
                        if final:
                            st = {**st, "final": True}  # the page fetches the last map and stops listening
                        yield f"event: state\ndata: {json.dumps(st, allow_nan=False)}\n\n"
                    if final:
                        return
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(closing.wait(), poll_s)
            finally:
                streams[0] -= 1

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def map_static(request: Request) -> Response:
        m = monitor.map_static()
        return JSONResponse(m if m is not None else {"available": False})

    async def map_state(request: Request) -> Response:
        m = monitor.map_state()
        map_served[0] = time.monotonic()
        return JSONResponse(m if m is not None else {"available": False})

    async def disc(request: Request) -> Response:
        q = request.query_params
        try:
            if "seq" in q:
                seq = monitor.find_disc(seq=int(q["seq"]))
            elif "id" in q:
                seq = monitor.find_disc(disc_id=q["id"])
            elif "x" in q and "y" in q:
                x, y = float(q["x"]), float(q["y"])
                if not (math.isfinite(x) and math.isfinite(y)):
                    raise ValueError
                seq = monitor.find_disc(x=x, y=y)
            else:
                return JSONResponse({"error": "give seq, id, or x and y"}, status_code=400)
        except ValueError:
            return JSONResponse({"error": "bad seq/x/y"}, status_code=400)
        if seq is None:
            return JSONResponse({"error": "no such disc"}, status_code=404)
        return JSONResponse(monitor.disc(seq))

    async def pause(request: Request) -> Response:
        if request.headers.get("x-fabplan-confirm") != "pause":
            return JSONResponse({"error": "confirmation header missing"}, status_code=400)
        if request_pause is None:
            return JSONResponse({"error": "this monitor cannot request a pause"}, status_code=403)
        who = request.client.host if request.client else "?"
        run_state = monitor.state(max_age_s=STATE_MAX_AGE_S)["state"]["state"]
        if run_state not in ("starting", "running"):
            return JSONResponse({"ok": False, "error": f"the run is {run_state}: nothing to pause"}, status_code=409)
        try:
            out = request_pause(f"pause requested from the monitor page ({who})")
        except Exception as exc:  # e.g. the run already ended
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
        monitor.pause_requested_at = time.time()
        log.warning("monitor: pause requested from %s", who)
        return JSONResponse({"ok": True, **(out or {})})

    routes = [
        Route("/", page),
        Route("/favicon.ico", favicon),
        Route("/api/state", state),
        Route("/api/events", events),
        Route("/api/map", map_static),
        Route("/api/map/state", map_state),
        Route("/api/disc", disc),
        Route("/api/pause", pause, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_TokenGate, token=token)])
