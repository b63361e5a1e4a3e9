"""A Light Conversion Pharos REST emulator (http.server, 127.0.0.1 only) over the shared laser model.

Endpoints (JSON bodies, as the driver and Light Conversion's `lightcon.laser_clients.Pharos` use
them), under each of `base_paths` (default /v1/Basic; older firmware and public scripts use /v0/Basic):
  GET  ''                              all values below in one object (lightcon's get_status)
  GET  /ActualOutputFrequency          kHz (base rate / pulse-picker divider)
  GET|PUT /TargetPpDivider             integer >= 1 (lightcon PUTs it as a JSON number string "4")
  GET  /ActualPpDivider                the divider in effect (lightcon's set_pp(blocking=True) polls it)
  POST /EnableOutput, /CloseOutput, /GoToStandby
  GET  /IsOutputEnabled                true | false
  GET|PUT /TargetAttenuatorPercentage  0..100
  GET  /ActualAttenuatorPercentage     where the attenuator is (the driver waits for it after a PUT)
  GET  /ActualOutputEnergy             uJ per pulse after the attenuator
  GET  /ActualOutputPower              W (energy x output frequency; 0 with the output closed)
  GET  /ActualRaPower, /ActualRaFrequency  W and kHz of the regenerative amplifier (before the pulse
                                       picker), reported with the output closed too: power / rate is
                                       the output's pulse energy at 100 % attenuator
  GET  /ActualHarmonic                 1 (the fundamental; LaserModel.harmonic)
  GET  /ActualStateName, /GeneralStatus "Operational" | "StandingBy" | "Interlock"
Faults (sim.faults) count HTTP requests: drop, garble, split, slow, interlock.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sim.faults import FaultPlan
from sim.laser_model import LaserModel

PREFIX = "/v1/Basic"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PharosEmulator/1.0"

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def emu(self) -> PharosEmulator:
        return self.server.emulator  # type: ignore[attr-defined]

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        hits = self.emu.faults.next_command()
        kinds = {f.kind: f for f in hits}
        if "drop" in kinds:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if "interlock" in kinds:
            self.emu.laser.interlock_open = True
        status, payload = self.emu.handle(method, self.path, body)
        data = json.dumps(payload).encode()
        if "garble" in kinds:
            data = b"\x15{garbled" + data[::-1]
        if "slow" in kinds:
            self.emu.stopping.wait(float(kinds["slow"].arg or 10.0))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if "split" in kinds:
            for i in range(0, len(data), 2):
                self.wfile.write(data[i:i + 2])
                self.wfile.flush()
                time.sleep(0.0003)
        else:
            self.wfile.write(data)


class PharosEmulator:
    """`start()`, then `.url` (pharos://127.0.0.1:PORT); `close()` stops the server."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, laser: LaserModel | None = None,
                 pulse_log=None, faults=None, seed: int = 0, base_paths: tuple[str, ...] = (PREFIX,),
                 attenuator_speed_pct_s: float = float("inf")):
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the emulator listens on loopback only")
        self.host, self.port = host, port
        self.base_paths = tuple(b.rstrip("/") for b in base_paths)
        self.laser = laser or LaserModel(pulse_log, seed=seed)
        self._own_laser = laser is None
        self.faults = faults if isinstance(faults, FaultPlan) else FaultPlan(faults)
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # the attenuator is a motorised waveplate: Actual follows Target at this speed (wall clock)
        self.attenuator_speed = attenuator_speed_pct_s
        self._att_target: float | None = None
        self._att_from = (self.laser.attenuator_percent, time.monotonic())

    def _attenuator_actual(self) -> float:
        """Where the waveplate is now; the laser model's energy follows it."""
        if self._att_target is None:
            return self.laser.attenuator_percent
        start, t0 = self._att_from
        step = self.attenuator_speed * (time.monotonic() - t0)
        d = self._att_target - start
        actual = self._att_target if abs(d) <= step else start + step * (1 if d > 0 else -1)
        self.laser.attenuator_percent = actual
        return actual

    @property
    def url(self) -> str:
        base = self.base_paths[0]
        return f"pharos://{self.host}:{self.port}" + ("" if base == PREFIX else base)

    def start(self) -> PharosEmulator:
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="pharos-emu")
        self._thread.start()
        return self

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._own_laser:
            self.laser.close()

    def inject(self, kind: str, at: int | None = None, arg: str = "") -> None:
        self.faults.add(kind, at, arg)

    def snapshot(self) -> dict:
        m = self.laser
        actual = self._attenuator_actual()
        target = actual if self._att_target is None else self._att_target
        energy = m.energy_uj() if m.output_enabled else 0.0
        return {"ActualOutputFrequency": m.output_frequency_hz / 1000.0, "TargetPpDivider": m.pp_divider,
                "ActualPpDivider": m.pp_divider,
                "IsOutputEnabled": m.output_enabled, "TargetAttenuatorPercentage": target,
                "ActualAttenuatorPercentage": actual,
                "ActualOutputEnergy": energy, "ActualOutputPower": energy * 1e-6 * m.output_frequency_hz,
                # the amplifier runs whether the output is open or not: its pulse energy (power / rate) is
                # the output's at 100 % attenuator, readable while closed
                "ActualRaPower": m.max_pulse_energy_uj * 1e-6 * m.base_rate_hz,
                "ActualRaFrequency": m.base_rate_hz / 1000.0, "ActualHarmonic": m.harmonic,
                "ActualStateName": m.state_name(), "GeneralStatus": m.state_name()}

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        """(HTTP status, JSON payload) for one request."""
        path = path.split("?")[0].rstrip("/")
        base = next((b for b in self.base_paths if path == b or path.startswith(b + "/")), None)
        if base is None:
            return 404, {"Error": f"no such endpoint {path}"}
        name = path[len(base):].lstrip("/")
        m = self.laser
        with m.lock:
            snap = self.snapshot()
            if method == "GET":
                if name == "":
                    return 200, snap
                if name in snap:
                    return 200, snap[name]
                return 404, {"Error": f"no such endpoint {path}"}
            if method == "POST":
                if name == "EnableOutput":
                    if m.interlock_open:
                        return 409, {"Error": "Interlock open: output cannot be enabled"}
                    m.output_enabled = True
                    return 200, True
                if name in ("CloseOutput", "GoToStandby"):
                    m.output_enabled = False
                    return 200, True
                return 405 if name in snap else 404, {"Error": f"POST not allowed on {path}"}
            if method == "PUT":
                try:
                    value = json.loads(body.decode() or "null")
                except (ValueError, UnicodeDecodeError):
                    return 400, {"Error": "body is not JSON"}
                if name == "TargetAttenuatorPercentage":
                    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100:
                        return 400, {"Error": "attenuator percentage must be a number in 0..100"}
                    if self.attenuator_speed == float("inf"):
                        m.attenuator_percent = float(value)
                        self._att_target = None
                    else:
                        self._att_from = (self._attenuator_actual(), time.monotonic())
                        self._att_target = float(value)
                    return 200, True
                if name == "TargetPpDivider":
                    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                        return 400, {"Error": "divider must be an integer >= 1"}
                    m.pp_divider = value
                    return 200, True
                return 405 if name in snap else 404, {"Error": f"PUT not allowed on {path}"}
        return 405, {"Error": f"method {method} not allowed"}
