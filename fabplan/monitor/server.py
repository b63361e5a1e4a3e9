"""Serve the monitor (uvicorn), alone (`fabplan monitor`) or as a child process beside a run.

Beside a run (`run/dry-run --monitor`, `--notify`) the monitor is a separate process: it reads the
journal like any other reader, so it costs the run no CPU time under its GIL and cannot crash it.
The child prints one line "READY URL" when it listens; it exits when the run's process is gone,
and on SIGTERM after a last look at the journal (so the final state still reaches the webhooks).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fabplan.errors import UserError

log = logging.getLogger("fabplan.monitor")

DEFAULT_PORT = 8765
READY = "READY "


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket (port 0: any free port); a taken port is a UserError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                        "--port 0 picks a free port") from None
    sock.listen(128)  # connections queue from now on: the address can be printed before uvicorn starts
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(journal: str | os.PathLike, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          token: str | None = None, notify: list[str] | None = None, stall_s: float = 60.0,
          allow_pause: bool = True, poll_s: float = 1.0, parent_pid: int | None = None,
          on_ready: Callable[[str, str | None], None] | None = None) -> int:
    """Serve until Ctrl+C / SIGTERM (or the parent process is gone); returns an exit code."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError('the monitor needs its web stack: pip install "fabplan[monitor]"') from None

    from fabplan.monitor.app import create_app
    from fabplan.monitor.notify import Notifier
    from fabplan.monitor.pause import request_pause
    from fabplan.monitor.state import Monitor

    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(18)  # serving beyond this machine: never without a token
    monitor = Monitor(journal, stall_s=stall_s)
    notifier = Notifier(list(notify or [])) if notify else None
    if notifier is not None and not Path(journal).exists():
        notifier.fresh()
    sock = bind(host, port)
    monitor.update()  # the first look before the address is announced: the page opens on the real state
    server: uvicorn.Server | None = None

    def on_update(mon: Monitor) -> None:
        if notifier is not None:
            notifier.observe(mon)
        if parent_pid is not None and os.getppid() != parent_pid and server is not None:
            server.should_exit = True  # the run is gone (even kill -9): do not linger as an orphan

    pause = (lambda reason: request_pause(journal, reason)) if allow_pause else None
    app = create_app(monitor, token=token, request_pause=pause, poll_s=poll_s, on_update=on_update)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=1, log_config=None)
    server = uvicorn.Server(config)
    terminated = []
    old = signal.signal(signal.SIGTERM, lambda *a: terminated.append(1))  # uvicorn re-raises it at exit
    if on_ready is not None:
        on_ready(url_of(sock), token)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, old)
        sock.close()
        _log_cpu(monitor)
        if notifier is not None:  # a last look: the end record may have come just now
            try:
                monitor.update()
                notifier.observe(monitor)
            finally:
                notifier.flush(5.0)
    return 0


def _log_cpu(monitor) -> None:
    """The monitor's own CPU time (bench/bench_monitor.py reads this line from the run's log)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    log.info("monitor cpu %.3f s (user %.3f + sys %.3f) for %d records", ru.ru_utime + ru.ru_stime, ru.ru_utime,
             ru.ru_stime, monitor.model.records)


@dataclass
class Beside:
    """A monitor child process following a run's journal."""

    proc: subprocess.Popen
    url: str | None
    token: str | None

    def stop(self, timeout_s: float = 8.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_beside(journal: str | os.PathLike, *, serve_page: bool = True, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, notify: list[str] | None = None, stall_s: float = 60.0,
                 log_file: str | os.PathLike | None = None, timeout_s: float = 60.0) -> Beside:
    """Start `fabplan monitor` on `journal` as a child of this process; returns once it listens."""
    cmd = [sys.executable, "-m", "fabplan.cli.cmd_monitor", "monitor", str(Path(journal).resolve()),
           "--host", host, "--port", str(port), "--parent", str(os.getpid()), "--stall-after", str(stall_s)]
    if not serve_page:
        cmd.append("--no-page")
    for u in notify or []:
        cmd += ["--notify", u]
    env = dict(os.environ)
    if token:
        env["FABPLAN_MONITOR_TOKEN"] = token  # not on the command line: `ps` shows that to every user
    if log_file:
        env["FABPLAN_MONITOR_LOG"] = str(log_file)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True,
                            start_new_session=True)  # Ctrl+C at the terminal goes to the run, not here
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(READY) or not line:
                break
        elif proc.poll() is not None:
            break
    if not line.startswith(READY):
        code = proc.poll()
        if code is None:
            proc.kill()
        proc.wait(5)
        raise UserError(f"the monitor did not start (exit {code}); run `fabplan monitor {journal}` to see why")
    parts = line.strip().split(" ")
    return Beside(proc=proc, url=parts[1] if len(parts) > 1 and parts[1] != "-" else None,
                  token=parts[2] if len(parts) > 2 else None)


def serve_notify_only(journal: str | os.PathLike, notify: list[str], *, stall_s: float, poll_s: float = 1.0,
                      parent_pid: int | None = None, on_ready: Callable[[str, str | None], None] | None = None) -> int:
    """Webhooks without a page: follow the journal and post alerts until SIGTERM or the parent exits."""
    from fabplan.monitor.notify import Notifier
    from fabplan.monitor.state import Monitor

    monitor = Monitor(journal, stall_s=stall_s)
    notifier = Notifier(notify)
    if not Path(journal).exists():
        notifier.fresh()
    stop = []
    old = signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    if on_ready is not None:
        on_ready("-", None)
    try:
        while not stop:
            monitor.update()
            notifier.observe(monitor)
            if parent_pid is not None and os.getppid() != parent_pid:
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        monitor.update()
        notifier.observe(monitor)
        notifier.flush(5.0)
        _log_cpu(monitor)
    return 0
