"""pyserial URL handler `esp301sim://NAME?speedup=inf&fault=...`: the ESP301 emulator without a pty.

pyserial finds it once "sim" is in `serial.protocol_handler_packages` (sim.esp301_emulator and
stage_drivers.esp301 add it). Ports with the same NAME share one emulated controller, so a
reconnect finds the axes where they were. Works where there are no ptys (Windows).
"""

from __future__ import annotations

import queue
import threading
import time
from urllib.parse import parse_qs, urlsplit

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from sim.esp301_emulator import Esp301Emulator

_CONTROLLERS: dict[str, Esp301Emulator] = {}
_LOCK = threading.Lock()


def controller(name: str, **kwargs) -> Esp301Emulator:
    """The shared emulated controller called NAME (created on first use)."""
    with _LOCK:
        emu = _CONTROLLERS.get(name)
        if emu is None:
            emu = Esp301Emulator(**kwargs)
            _CONTROLLERS[name] = emu
        return emu


class Serial(SerialBase):
    """A serial port whose far end is an in-process Esp301Emulator (lines handled on a worker thread)."""

    def open(self):
        if self.is_open:
            raise SerialException("port already open")
        parts = urlsplit(self.portstr)
        if parts.scheme != "esp301sim":
            raise SerialException(f"expected esp301sim://NAME?..., got {self.portstr!r}")
        opts = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._emu = controller(parts.netloc or "default", speedup=opts.get("speedup", "inf"),
                               faults=opts.get("fault"), seed=int(opts.get("seed", 0)))
        self._rx = bytearray()
        self._cond = threading.Condition()
        self._inq: queue.Queue = queue.Queue()
        self._dead = False
        self._emu._write = self._deliver  # replies come back here instead of a pty master
        self._worker = threading.Thread(target=self._run, daemon=True, name="esp301sim")
        self._worker.start()
        self.is_open = True

    def _deliver(self, data: bytes, split: bool = False):
        with self._cond:
            self._rx += data
            self._cond.notify_all()

    def _run(self):
        buf = b""
        while True:
            data = self._inq.get()
            if data is None:
                return
            buf += data
            while True:
                cut = min((i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0), default=-1)
                if cut < 0:
                    break
                line, buf = buf[:cut], buf[cut + 1:]
                if line.strip() and not self._emu._handle_line(line.decode("ascii", "replace")):
                    with self._cond:  # "drop": the adapter vanished
                        self._dead = True
                        self._cond.notify_all()
                    self._emu._stop.clear()
                    return

    def close(self):
        if self.is_open:
            self.is_open = False
            self._inq.put(None)
        super().close()

    def _reconfigure_port(self):
        pass

    @property
    def in_waiting(self):
        if not self.is_open:
            raise PortNotOpenError()
        return len(self._rx)

    def read(self, size=1):
        if not self.is_open:
            raise PortNotOpenError()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._cond:
            while len(self._rx) < size:
                if self._dead:
                    raise SerialException("esp301sim: device disconnected")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            out = bytes(self._rx[:size])
            del self._rx[:size]
            return out

    def write(self, data):
        if not self.is_open:
            raise PortNotOpenError()
        if self._dead:
            raise SerialException("esp301sim: device disconnected")
        self._inq.put(bytes(data))
        return len(data)

    def reset_input_buffer(self):
        with self._cond:
            self._rx.clear()

    def reset_output_buffer(self):
        pass
