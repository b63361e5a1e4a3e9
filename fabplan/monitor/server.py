"""Serve the monitor (uvicorn), alone (`fabplan monitor`) or as a child process beside a run.

Beside a run (`run/dry-run --monitor`, `--notify`) the monitor is a separate process: it reads the
journal like any other reader, so it costs the run no CPU time under its GIL and cannot crash it.
The child prints one line "READY URL" when it listens; it exits when the run's process is gone,
and on SIGTERM after a last look at the journal (so the final state still reaches the webhooks).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fabplan.errors import UserError

log = logging.getLogger("fabplan.monitor")

DEFAULT_PORT = 8765
READY = "READY "


CPUS_ENV = "FABPLAN_MONITOR_CPUS"


def monitor_cpus(spec: str | None = None) -> set[int] | None:
    """The CPUs the monitor runs on, from $FABPLAN_MONITOR_CPUS ("1", "2-3", "1,3" as taskset -c
    takes them), or None (no preference). On a lab PC, pin the run to one core and keep the monitor
    (and the browser) off it: the run's step loop then never waits behind them."""
    spec = os.environ.get(CPUS_ENV, "") if spec is None else spec
    if not spec.strip():
        return None
    cpus: set[int] = set()
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d{1,4})(?:-(\d{1,4}))?\s*", part)
        a, b = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (1, 0)
        if b < a:
            raise UserError(f"${CPUS_ENV}={spec[:40]!r}: give CPU numbers like 1, 2-3 or 1,3")
        cpus.update(range(a, b + 1))
    if not cpus <= set(range(os.cpu_count() or 1)):
        raise UserError(f"${CPUS_ENV}={spec[:40]!r}: this machine has CPUs 0-{(os.cpu_count() or 1) - 1}")
    return cpus


def token_for(host: str, token: str | None) -> str | None:
    """The token to require: the one given, or a new one when serving beyond this machine (never without)."""
    if token or is_loopback(host):
        return token
    return secrets.token_urlsafe(18)


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
          on_ready: Callable[[str, str | None], None] | None = None, sock: socket.socket | None = None,
          end_fd: int | None = None, baseline_bytes: int | None = None) -> int:
    """Serve until Ctrl+C / SIGTERM, the run's end on `end_fd`, or the parent process is gone.

    `sock`: a socket already listening (beside a run: bound by the run, which printed its address at
    once). `baseline_bytes`: what the journal held before the run's session began; alerts are for
    what comes after (0: a new run, everything is news). Returns an exit code."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError('the monitor needs its web stack: pip install "fabplan[monitor]"') from None

    from fabplan.monitor.app import create_app
    from fabplan.monitor.pause import request_pause
    from fabplan.monitor.state import Monitor

    token = token_for(host, token)
    monitor = Monitor(journal, stall_s=stall_s)
    notifier = _notifier(monitor, notify, baseline_bytes)
    if sock is None:
        sock = bind(host, port)
    monitor.update()  # the first look before the address is announced: the page opens on the real state
    server: uvicorn.Server | None = None

    def on_update(mon: Monitor) -> None:
        if notifier is not None:
            notifier.observe(mon)
        if parent_pid is not None and os.getppid() != parent_pid and server is not None:
            server.should_exit = True  # the run is gone (even kill -9): do not linger as an orphan

    def on_end() -> None:
        """The run is over and its last state is out to the pages and webhooks: leave at once.
        (uvicorn's graceful shutdown would add 0.1-0.2 s of fixed sleeps to the run's exit.)"""
        _log_cpu(monitor)
        if notifier is not None:
            notifier.flush(5.0)
        logging.shutdown()
        os._exit(0)

    pause = (lambda reason: request_pause(journal, reason)) if allow_pause else None
    app = create_app(monitor, token=token, request_pause=pause, poll_s=poll_s, on_update=on_update,
                     end_fd=end_fd, on_end=on_end)
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


def _notifier(monitor, notify: list[str] | None, baseline_bytes: int | None):
    """A Notifier whose baseline is the journal as it was before this session (see serve)."""
    from fabplan.monitor.notify import Notifier

    if not notify:
        return None
    notifier = Notifier(list(notify))
    if baseline_bytes is None:  # standalone: what the journal says at the first look is old news
        if not Path(monitor.path).exists():
            notifier.fresh()
    elif baseline_bytes <= 0:
        notifier.fresh()
    else:  # beside a resumed run: the records before its session are the baseline, not news
        monitor.update(upto=baseline_bytes)
        notifier.observe(monitor)
    return notifier


def _log_cpu(monitor) -> None:
    """The monitor's own CPU time (bench/bench_monitor.py reads this line from the run's log)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    log.info("monitor cpu %.3f s (user %.3f + sys %.3f) for %d records", ru.ru_utime + ru.ru_stime, ru.ru_utime,
             ru.ru_stime, monitor.model.records)


class Beside:
    """A monitor child process following a run's journal (see start_beside)."""

    def __init__(self, proc: subprocess.Popen, url: str | None, token: str | None, alerts: bool = False):
        self.proc = proc
        self.url = url
        self.token = token
        self.alerts = alerts  # it posts webhooks: its last look must happen, even for a short run
        self._ready = threading.Event()
        self._stopping = False
        self._reader = threading.Thread(target=self._read, name="monitor-child", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """The child's one line ("READY ..."), then its exit: an early death is logged, the run goes on."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(READY):
                self._ready.set()
        code = self.proc.wait()
        self._ready.set()
        if not self._stopping and code != 0:
            log.warning("the monitor beside this run stopped early (exit %s); the run goes on. "
                        "`fabplan monitor JOURNAL` serves it again", code)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the child listens (connections made before are queued, not refused)."""
        if not self._ready.wait(timeout_s) or self.proc.poll() is not None:
            code = self.proc.poll()
            if code is None:
                self.proc.kill()
            self.proc.wait(5)
            raise UserError(f"the monitor did not start (exit {code}); run `fabplan monitor JOURNAL` to see why")

    def stop(self, timeout_s: float = 8.0) -> None:
        """Tell the child the run is over; it takes its last look, pushes it to the pages, and exits."""
        self._stopping = True
        if self.proc.poll() is None and not self._ready.is_set() and not self.alerts:
            self.proc.terminate()  # a run shorter than the child's start: it never served, nothing to hand over
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("end\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self._reader.join(5)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError, ValueError):
                    f.close()


def web_stack_missing() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) is None for m in ("starlette", "uvicorn"))


def start_beside(journal: str | os.PathLike, *, serve_page: bool = True, host: str = "127.0.0.1",
                 port: int | None = 0,
                 token: str | None = None, notify: list[str] | None = None, stall_s: float = 60.0,
                 log_file: str | os.PathLike | None = None, wait: bool = True, timeout_s: float = 60.0) -> Beside:
    """Start `fabplan monitor` on `journal` as a child of this process.

    The socket is bound here, so the address is known (and printable) before the child has even
    imported its web stack; connections wait in the listen queue meanwhile. `port=None`: the usual
    port, or any free one when another run's monitor has it. `wait=False` returns at once (a run does
    not wait for its monitor); `wait=True` returns once the child serves."""
    journal = Path(journal).resolve()
    cpus = monitor_cpus()  # a bad $FABPLAN_MONITOR_CPUS is refused before anything starts
    if serve_page and web_stack_missing():
        raise UserError('the monitor needs its web stack: pip install "fabplan[monitor]"')
    try:
        baseline = journal.stat().st_size  # alerts are for what this session adds
    except OSError:
        baseline = 0
    sock = None
    if serve_page:
        try:
            sock = bind(host, DEFAULT_PORT if port is None else port)
        except UserError:
            if port is not None:
                raise
            sock = bind(host, 0)
        token = token_for(host, token)
    cmd = [sys.executable, "-m", "fabplan.cli.cmd_monitor", "monitor", str(journal), "--host", host,
           "--parent", str(os.getpid()), "--stall-after", str(stall_s), "--baseline-bytes", str(baseline)]
    if sock is not None:
        cmd += ["--fd", str(sock.fileno())]
    else:
        cmd.append("--no-page")
    for u in notify or []:
        cmd += ["--notify", u]
    env = dict(os.environ)
    if token:
        env["FABPLAN_MONITOR_TOKEN"] = token  # not on the command line: `ps` shows that to every user
    if log_file:
        env["FABPLAN_MONITOR_LOG"] = str(log_file)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, env=env, text=True,
                                pass_fds=() if sock is None else (sock.fileno(),),
                                start_new_session=True)  # Ctrl+C at the terminal goes to the run, not here
    finally:
        url = None if sock is None else url_of(sock)
        if sock is not None:
            sock.close()  # the child holds its own copy
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):  # now, not once it has imported its web stack on the run's CPU
            os.sched_setaffinity(proc.pid, cpus)
    beside = Beside(proc, url, token, alerts=bool(notify))
    if wait:
        beside.wait_ready(timeout_s)
    return beside


def serve_notify_only(journal: str | os.PathLike, notify: list[str], *, stall_s: float, poll_s: float = 1.0,
                      parent_pid: int | None = None, on_ready: Callable[[str, str | None], None] | None = None,
                      end_fd: int | None = None, baseline_bytes: int | None = None) -> int:
    """Webhooks without a page: follow the journal and post alerts until SIGTERM, the run's end on
    `end_fd`, or the parent's exit."""
    from fabplan.monitor.state import Monitor

    monitor = Monitor(journal, stall_s=stall_s)
    notifier = _notifier(monitor, notify, baseline_bytes)
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
            if end_fd is None:
                time.sleep(poll_s)
            elif select.select([end_fd], [], [], poll_s)[0]:
                break  # the run is over (or its process gone): the last look is below
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        monitor.update()
        notifier.observe(monitor)
        notifier.flush(5.0)
        _log_cpu(monitor)
    return 0
