"""Light Conversion Pharos laser over its REST API (http://host:20020/v1/Basic), with a stage-controller trigger.

The URL chooses port and base path: `pharos://host:20022` (lightcon's default port),
`pharos://host:20020/v0` or `pharos://host/v0/Basic` (firmware serving /v0/, as public scripts use).

REST calls are software-timed: they arm the output, set the attenuator and pulse picker and read
energy and state. Per-shot firing goes through `trigger` (an XpsStage: GPIO gate + DOPulse trigger,
position compare), which is what makes `fire()` one controller call.

The interlock is checked on arm() and then at most every `interlock_check_s` seconds during firing
(a REST round trip per shot would cost more than the shot); pulses blocked in between show up in
the ground-truth log with gate 0.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Sequence

from stage_drivers.protocols import (
    CommandError,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    InterlockOpen,
    LineFiring,
    ProtocolError,
)
from stage_drivers.urls import register_scheme, spy_transport

DEFAULT_PORT = 20020
ATTENUATOR_TOLERANCE_PCT = 0.05


def base_path_for(url_path: str) -> str:
    """REST base path from a pharos:// URL path: '' -> /v1/Basic, '/v0' -> /v0/Basic, '/v0/Basic' kept."""
    p = "/" + (url_path or "").strip("/")
    if p == "/":
        return "/v1/Basic"
    return p if p.endswith("/Basic") else p + "/Basic"


class PharosLaser:
    """A `PulseSource`: Pharos output/attenuator over REST, per-shot triggers from the stage controller."""

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, trigger=None, timeout_s: float | None = None,
                 url: str | None = None, base_path: str = "/v1/Basic", interlock_check_s: float = 0.5,
                 attenuator_timeout_s: float = 30.0, poll_interval_s: float = 0.05):
        self.host, self.port = host, port
        self.trigger = trigger
        self.timeout_s = 3.0 if timeout_s is None else float(timeout_s)
        self.url = url or f"pharos://{host}:{port}"
        self.base_path = base_path
        self.interlock_check_s = interlock_check_s
        self.attenuator_timeout_s = attenuator_timeout_s
        self.poll_interval_s = poll_interval_s
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._armed = False
        self._last_check = 0.0
        self._last_ok: float | None = None

    @classmethod
    def from_url(cls, u, trigger=None, timeout_s: float | None = None) -> PharosLaser:
        return cls(u.host or "127.0.0.1", u.port or DEFAULT_PORT, trigger=trigger,
                   timeout_s=timeout_s if timeout_s is not None else u.float_param("timeout", 3.0), url=u.raw,
                   base_path=base_path_for(u.path), interlock_check_s=u.float_param("interlock_check", 0.5),
                   attenuator_timeout_s=u.float_param("attenuator_timeout", 30.0))

    # ------------------------------------------------------------------ HTTP

    def request(self, method: str, name: str, value=None):
        """One REST call; returns the decoded JSON reply or raises a DeviceError naming it."""
        path = f"{self.base_path}/{name}" if name else self.base_path
        body = None if value is None else json.dumps(value)
        shown = f"{method} {path}" + (f" {body}" if body is not None else "")
        with self._lock:
            for attempt in (0, 1):
                reused = self._conn is not None
                if self._conn is None:
                    self._conn = spy_transport(self, http.client.HTTPConnection(self.host, self.port,
                                                                                timeout=self.timeout_s))
                try:
                    headers = {"Content-Type": "application/json"} if body is not None else {}
                    self._conn.request(method, path, body=body, headers=headers)
                    resp = self._conn.getresponse()
                    raw = resp.read()
                    break
                except TimeoutError as exc:
                    self._drop()
                    raise DeviceTimeout("no reply within the timeout", device=self.url, command=shown) from exc
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                    self._drop()
                    if attempt == 0 and reused and method == "GET":
                        continue  # a stale keep-alive connection: one clean retry for a read
                    raise ConnectionLost(f"connection lost: {exc}", device=self.url, command=shown) from exc
                except (OSError, http.client.HTTPException) as exc:
                    self._drop()
                    raise ConnectionLost(f"HTTP failure: {exc}", device=self.url, command=shown) from exc
        text = raw.decode("utf-8", "replace")
        try:
            data = json.loads(text) if text else None
        except ValueError as exc:
            self._drop()
            raise ProtocolError("reply is not JSON", device=self.url, command=shown, reply=text[:200]) from exc
        if resp.status >= 400:
            message = data.get("Error", text) if isinstance(data, dict) else text
            cls = InterlockOpen if "interlock" in str(message).lower() else CommandError
            raise cls(f"HTTP {resp.status}: {message}", device=self.url, command=shown, reply=text[:200],
                      code=resp.status)
        return data

    def _drop(self):
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _number(self, name: str) -> float:
        v = self.request("GET", name)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ProtocolError("expected a number", device=self.url, command=f"GET {name}", reply=repr(v))
        return float(v)

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> PharosLaser:
        self.state()
        if self.trigger is not None:
            self.trigger.set_gate(False)
        return self

    def close(self) -> None:
        try:
            self.disarm()
        finally:
            self._drop()

    def __enter__(self) -> PharosLaser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ state

    def state(self) -> str:
        return str(self.request("GET", "ActualStateName"))

    @property
    def last_interlock_ok(self) -> float | None:
        """time.monotonic() at which the interlock was last seen closed (None: never checked good).

        Taken when the good check was *sent* (the state may change while the reply travels). When a
        later check finds the interlock open, pulses triggered after this time may have been dark;
        everything before it was lit (as far as the interlock goes)."""
        return self._last_ok

    def check_interlock(self) -> None:
        sent = time.monotonic()
        state = self.state()
        self._last_check = time.monotonic()
        if "interlock" not in state.lower():
            self._last_ok = sent
        else:
            self._armed = False
            self._close_gate()
            raise InterlockOpen("laser interlock open", device=self.url, command="GET ActualStateName",
                                reply=state)

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self) -> None:
        """Check the interlock, enable the output, open the gate."""
        self.check_interlock()
        self.request("POST", "EnableOutput")
        if self.trigger is not None:
            self.trigger.set_gate(True)
        self._armed = True

    def _close_gate(self):
        if self.trigger is not None:
            try:
                self.trigger.set_gate(False)
            except DeviceError:
                pass
            try:
                self.trigger.disarm_compare()
            except DeviceError:
                pass

    def disarm(self) -> None:
        """Close the gate and the output; never raises (for finally blocks)."""
        self._armed = False
        self._close_gate()
        try:
            self.request("POST", "CloseOutput")
        except DeviceError:
            pass

    def fire(self, n: int = 1) -> None:
        if not self._armed:
            raise DeviceError("not armed: call arm() first", device=self.url, command="fire")
        if self.trigger is None:
            raise DeviceError("no trigger source: open_laser(url, stage=<XPS stage>)", device=self.url,
                              command="fire")
        if time.monotonic() - self._last_check > self.interlock_check_s:
            self.check_interlock()
        self.trigger.fire_pulses(n)

    def set_attenuation(self, percent: float) -> None:
        if not (isinstance(percent, (int, float)) and math.isfinite(percent) and 0 <= percent <= 100):
            raise ValueError(f"attenuation must be within 0..100 %, got {percent!r}")
        self.request("PUT", "TargetAttenuatorPercentage", float(percent))
        # the attenuator is a motorised waveplate: shots wait until it has arrived (Actual, not Target)
        deadline = time.monotonic() + self.attenuator_timeout_s
        while abs((actual := self.attenuation()) - percent) > ATTENUATOR_TOLERANCE_PCT:
            if time.monotonic() > deadline:
                raise DeviceTimeout(f"attenuator at {actual:.3f} %, not {percent:.3f} %, after "
                                    f"{self.attenuator_timeout_s:g} s", device=self.url,
                                    command="GET ActualAttenuatorPercentage", reply=repr(actual))
            time.sleep(self.poll_interval_s)

    def attenuation(self) -> float:
        """Where the attenuator is (ActualAttenuatorPercentage), not where it was told to go."""
        return self._number("ActualAttenuatorPercentage")

    def pulse_energy_uj(self) -> float:
        return self._number("ActualOutputEnergy")

    def closed_readout(self) -> dict:
        """What the laser is set to, read in one request (GET of the Basic status object, lightcon's
        `get_status`) without opening anything: pre-flight compares it with the design before arming.

        The Pharos reports 0 output energy while its output is closed, but its regenerative amplifier
        (RA) runs and reports ActualRaPower (W) and ActualRaFrequency (kHz, before the pulse picker):
        their ratio is the pulse energy the output carries at 100 % attenuator (the laser's own output
        energy is that scaled by the attenuator: ActualOutputEnergy = RA energy x attenuator %), so
        `energy_at_100_uj` is known while closed. It is NaN, with `energy_unknown_why`, when the
        firmware does not report the RA values, or does not report ActualHarmonic 1 (the fundamental):
        a harmonic module after the RA converts with an efficiency the API does not give, so the
        energy is then only known once armed."""
        status = self.request("GET", "")
        if not isinstance(status, dict):
            raise ProtocolError("expected the status object", device=self.url, command=f"GET {self.base_path}",
                                reply=repr(status)[:200])

        def num(key: str) -> float:
            v = status.get(key)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan

        ra_w, ra_khz, harmonic = num("ActualRaPower"), num("ActualRaFrequency"), num("ActualHarmonic")
        energy, why = math.nan, ""
        if not (ra_w > 0 and ra_khz > 0):
            why = "the laser reports no regenerative-amplifier power/frequency (ActualRaPower, ActualRaFrequency)"
        elif harmonic != 1:
            why = (f"harmonic {harmonic:g}" if math.isfinite(harmonic) else "no ActualHarmonic") + (
                ": the output may not be the amplifier's fundamental (a harmonic module's conversion is not reported)")
        else:
            energy = ra_w / (ra_khz * 1e3) * 1e6  # W / Hz = J per pulse, in uJ
        out_khz = num("ActualOutputFrequency")
        return {"output_enabled": status.get("IsOutputEnabled") is True,
                "attenuator_percent": num("ActualAttenuatorPercentage"),
                "attenuator_target_percent": num("TargetAttenuatorPercentage"),
                "pp_divider": num("ActualPpDivider"), "pp_divider_target": num("TargetPpDivider"),
                "output_frequency_hz": out_khz * 1e3, "ra_power_w": ra_w, "ra_frequency_hz": ra_khz * 1e3,
                "harmonic": harmonic, "output_energy_uj": num("ActualOutputEnergy"),
                "energy_at_100_uj": energy, "energy_unknown_why": why}

    def set_divider(self, divider: int) -> None:
        self.request("PUT", "TargetPpDivider", int(divider))

    def output_frequency_hz(self) -> float:
        return self._number("ActualOutputFrequency") * 1000.0  # the API reports kHz

    def arm_line(self, axis: str, positions_um: Sequence[float]) -> LineFiring:
        if not self._armed:
            raise DeviceError("not armed: call arm() first", device=self.url, command="arm_line")
        if self.trigger is None:
            raise DeviceError("no trigger source for position compare", device=self.url, command="arm_line")
        self.check_interlock()
        return self.trigger.arm_compare(axis, positions_um)

    def disarm_line(self) -> None:
        if self.trigger is not None:
            self.trigger.disarm_compare()
        if self._armed:
            self.check_interlock()


register_scheme("pharos", laser=PharosLaser.from_url)
