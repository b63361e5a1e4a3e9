"""A guardian process: no single process death leaves the laser armed.

The run process starts `python -m stage_drivers.guardian --stage URL [--laser URL]` as a child in
its own session (terminal Ctrl+C does not reach it). The guardian opens its *own* connections to the
stage controller (without touching its outputs) and to the laser, then watches a pipe:

- the run process writes a heartbeat byte every `HEARTBEAT_S` on the guardian's stdin;
- when the run process dies, however it dies (SIGKILL included), the kernel closes that pipe: the
  guardian reads end-of-file at once and makes the devices safe (gate low, position compare
  disabled on every positioner of the group, laser output closed), in well under a second;
- when the heartbeat stops for `timeout` seconds (2 s; the run process frozen: stopped, swapping,
  stuck holding the interpreter lock), the guardian makes the devices safe too and exits, so the
  run (if it wakes up) stops; shots it fired after the safe-off were dark, which the journal cannot
  know (the heartbeat thread beats every 0.2 s, so 2 s of silence is a frozen process, not a busy one);
- a clean end ("q") lets the guardian exit without touching anything.

The other way round, the run process watches the guardian (`Guardian.alive`, `on_lost`): a guardian
that dies makes the run stop at its next safe point (gate closed on that path).

What is left to hardware: a power cut of the PC (both processes die, nothing is sent): the laser's
own interlock and a watchdog on the gate line must cover it; see the README's bring-up section.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time

HEARTBEAT_S = 0.2
DEFAULT_TIMEOUT_S = 2.0  # a frozen run; a dead one is noticed at once (end of file on the pipe)
DEVICE_TIMEOUT_S = 0.4


class GuardianError(RuntimeError):
    """The guardian could not start (it could not reach a device): the run must not start either."""


def _with_param(url: str, key: str, value: str) -> str:
    return url + ("&" if "?" in url else "?") + f"{key}={value}"


def guardable(url: str | None) -> bool:
    """A URL another process can reach (not an in-process sim:// lab, not a serial port)."""
    if not url:
        return False
    scheme = url.split("://", 1)[0].removeprefix("spy+")
    return scheme in ("xps", "pharos")


class SafeOff:
    """The guardian's own connections and the one thing it does: make every output safe."""

    def __init__(self, stage_url: str | None, laser_url: str | None):
        from stage_drivers import open_laser, open_stage

        self.stage = self.laser = None
        if stage_url and guardable(stage_url):
            # reset=0: connecting must not touch the outputs of the run it guards
            self.stage = open_stage(_with_param(stage_url, "reset", "0"), timeout_s=DEVICE_TIMEOUT_S)
        if laser_url and guardable(laser_url) and laser_url.split("://", 1)[0].endswith("pharos"):
            self.laser = open_laser(laser_url, timeout_s=DEVICE_TIMEOUT_S, connect=False)
            self.laser.state()  # the connection is open (and the laser answers) before anything is armed

    def __call__(self) -> list[str]:
        """Gate low, laser output closed, position compare disabled; the failures, if any."""
        from stage_drivers.protocols import DeviceError

        failed = []
        steps = []
        if self.stage is not None:
            steps.append(("gate low", lambda: self.stage.set_gate(False)))
        if self.laser is not None:
            steps.append(("laser output closed", lambda: self.laser.request("POST", "CloseOutput")))
        if self.stage is not None:
            steps.append(("position compare off", lambda: self.stage.disarm_compare(all_positioners=True)))
        for what, step in steps:
            for _attempt in (0, 1):  # a stale socket is reopened once
                try:
                    step()
                    break
                except DeviceError as exc:
                    err = f"{what}: {exc}"
            else:
                failed.append(err)
        return failed

    def close(self) -> None:
        """Drop the connections without the drivers' own close (which would touch the outputs)."""
        with contextlib.suppress(Exception):
            if self.stage is not None:
                self.stage.reconnect()
            if self.laser is not None:
                self.laser._drop()


def watch(fd: int, safe_off, timeout_s: float, log=sys.stderr) -> str:
    """Wait on the heartbeat pipe; return why the guardian stops ('clean', 'eof', 'silent')."""
    last = time.monotonic()
    while True:
        left = timeout_s - (time.monotonic() - last)
        if left <= 0:
            why = "silent"
            break
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        data = os.read(fd, 4096)
        if not data:
            why = "eof"
            break
        if b"q" in data:
            return "clean"
        last = time.monotonic()
    t0 = time.monotonic()
    failed = safe_off()
    dt = (time.monotonic() - t0) * 1000
    what = "the run process died" if why == "eof" else f"no heartbeat for {timeout_s:g} s"
    print(f"fabplan guardian: {what}: outputs made safe in {dt:.0f} ms"
          + (f"; FAILED: {'; '.join(failed)}" if failed else ""), file=log, flush=True)
    return why


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stage_drivers.guardian", description=__doc__.split("\n")[0])
    ap.add_argument("--stage", help="stage controller URL (xps://...)")
    ap.add_argument("--laser", help="laser URL (pharos://...)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="heartbeat timeout, s")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the run's (pause), never the guardian's
    try:
        safe_off = SafeOff(a.stage, a.laser)
    except Exception as exc:  # noqa: BLE001  any failure to connect is reported to the run process
        print(f"fabplan guardian: cannot connect: {exc}", flush=True)
        return 2
    print("ready", flush=True)
    try:
        why = watch(sys.stdin.fileno(), safe_off, a.timeout)
    finally:
        safe_off.close()
    return 0 if why == "clean" else 1


class Guardian:
    """The run process's side: start the guardian, feed its heartbeat, notice if it dies.

        with Guardian(stage_url, laser_url, on_lost=session.request_stop):
            ...  # arm, fire

    `start()` returns once the guardian holds its connections (or raises GuardianError).
    """

    def __init__(self, stage_url: str | None, laser_url: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 on_lost=None, start_timeout_s: float = 20.0):
        self.stage_url, self.laser_url = stage_url, laser_url
        self.timeout_s = timeout_s
        self.on_lost = on_lost
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Guardian:
        cmd = [sys.executable, "-m", "stage_drivers.guardian", "--timeout", str(self.timeout_s)]
        if self.stage_url:
            cmd += ["--stage", self.stage_url]
        if self.laser_url:
            cmd += ["--laser", self.laser_url]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                     start_new_session=True, bufsize=0)
        ready = select.select([self.proc.stdout], [], [], self.start_timeout_s)[0]
        line = self.proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if line != "ready":
            self.proc.kill()
            self.proc.wait()
            raise GuardianError(line or f"the guardian did not start within {self.start_timeout_s:g} s")
        self._thread = threading.Thread(target=self._beat, name="fabplan-guardian-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._done.wait(HEARTBEAT_S):
            try:
                self.proc.stdin.write(b".")
            except (BrokenPipeError, OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                self.lost = f"the guardian process exited (code {self.proc.returncode})"
                if self.on_lost is not None:
                    self.on_lost(self.lost + ": stopping the run")
                return

    def stop(self) -> None:
        """A clean end: the guardian exits without touching the devices."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):
                self.proc.stdin.write(b"q")
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Guardian:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def guardian_for(stage_url: str | None, laser_url: str | None, *, on_lost=None):
    """A started Guardian when a device is reachable from another process, else a no-op context."""
    if not (guardable(stage_url) or guardable(laser_url)):
        return contextlib.nullcontext()
    return Guardian(stage_url, laser_url if guardable(laser_url) else None, on_lost=on_lost)


if __name__ == "__main__":
    sys.exit(main())
