"""The emulated femtosecond laser and the ground-truth pulse log shared by all emulators.

The stage controller triggers pulses (GPIO pulse, position compare); the Pharos REST API enables
the output and sets the attenuator. A pulse leaves the laser only if the output is enabled, the
gate line is high and the safety interlock is closed; every trigger is logged, with energy 0 and
gate 0 when it was blocked, so tests can count both. The pulse picker divides the amplifier
(base_rate_hz, 200 kHz) down to the output rate (a dry run: the design's repetition_rate); a trigger
waits for the next amplified pulse and pulses stay one output period apart (`release_times`).

Pulse log columns: t_s (emulated time), x_um, y_um, z_um (true stage position when the pulse hit,
i.e. the emulated encoder minus its noise), energy_uj, gate (1 = light), source (gpio | pco).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path

import numpy as np

COLUMNS = ("t_s", "x_um", "y_um", "z_um", "energy_uj", "gate", "source")


class PulseLog:
    """Append-only CSV (or JSONL if the name ends .jsonl): every trigger call is one os.write on an
    O_APPEND descriptor, so each pulse already fired is in the file (the kernel's page cache) at
    once and survives a SIGKILL of the emulator process (issue 13: a 0.2 s flush buffer lost the
    last pulses). A fly row's triggers are one write, a step shot's one line."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.path.suffix == ".jsonl"
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.count = 0
        if not self.jsonl and os.fstat(self._fd).st_size == 0:
            self._write(",".join(COLUMNS) + "\n")

    def _write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:  # a regular file takes it in one write; loop in case of a short write
            data = data[os.write(self._fd, data):]

    def write_many(self, t, x, y, z, energy, gate, source: str) -> None:
        n = len(t)
        with self._lock:
            if self._closed.is_set():
                return
            if self.jsonl:
                self._write("".join(json.dumps({"t_s": float(t[i]), "x_um": float(x[i]), "y_um": float(y[i]),
                                                "z_um": float(z[i]), "energy_uj": float(energy[i]),
                                                "gate": int(gate[i]), "source": source}) + "\n"
                                    for i in range(n)))
            else:
                self._write("".join(
                    f"{t[i]:.9f},{x[i]:.5f},{y[i]:.5f},{z[i]:.5f},{energy[i]:.5f},{int(gate[i])},{source}\n"
                    for i in range(n)))
            self.count += n

    def write_line(self, csv_line: str, record: dict) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._write(json.dumps(record) + "\n" if self.jsonl else csv_line)
            self.count += 1

    def flush(self) -> None:
        """Nothing is buffered in this process (kept for callers that flush before reading)."""

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class LaserModel:
    """Output state, attenuator, pulse picker and interlock of the emulated laser."""

    def __init__(self, pulse_log=None, *, max_pulse_energy_uj: float = 10.0, base_rate_hz: float = 200e3,
                 output_enabled: bool = False, energy_rms: float = 0.01, seed: int = 0):
        self.log = PulseLog(pulse_log) if pulse_log else None
        self.max_pulse_energy_uj = max_pulse_energy_uj
        self.base_rate_hz = base_rate_hz  # amplifier rate: an external trigger waits for the next pulse
        self.pp_divider = 1
        self.last_pulse_t = -float("inf")  # emulated time of the last pulse that left (the picker's period)
        self.harmonic = 1  # reported by the Pharos emulator (> 1: the energy is not known while closed)
        self.attenuator_percent = 100.0
        self.output_enabled = output_enabled
        self.interlock_open = False
        self.gate = False
        self.energy_rms = energy_rms
        self.rng = np.random.default_rng(seed)
        self.prng = random.Random(seed)
        self.fired = 0  # pulses with light
        self.blocked = 0
        self.lock = threading.Lock()
        self.state_changed = time.monotonic()

    @property
    def output_frequency_hz(self) -> float:
        return self.base_rate_hz / self.pp_divider

    def set_output_rate(self, rate_hz: float) -> None:
        """Set the pulse picker to divide the amplifier down to `rate_hz` (nearest integer divider, as
        a Pharos's TargetPpDivider; 0: the amplifier's own rate). A design's repetition_rate is the rate
        at its output, so a dry run's laser is set to it, like a `sim://...?rep_rate=` lab."""
        if not (rate_hz >= 0 and rate_hz <= self.base_rate_hz * (1 + 1e-9)):
            raise ValueError(f"repetition rate {rate_hz:g} Hz outside 0 < rate <= the amplifier's "
                             f"{self.base_rate_hz:g} Hz")
        self.pp_divider = max(1, round(self.base_rate_hz / rate_hz)) if rate_hz > 0 else 1

    def release_times(self, t: np.ndarray) -> np.ndarray:
        """When triggers at sorted times t get their pulses, given the pulse picker's period.

        The model (pulse on demand, as fabplan's fly mode assumes): a trigger releases the next
        amplified pulse (the wait, uniform in one amplifier period, is in `t` already), but the
        picker cannot pick pulses closer than one output period 1 / output_frequency_hz: a trigger
        that comes sooner waits for it. At 200 kHz that never shows; at a design's 1 kHz a multi-pulse
        shot lasts N ms and triggers faster than 1 kHz (a fly row too fast for its pitch) land late,
        downstream, where the read-back sees them. On the laser both the wait and the picker's period
        fall on the amplifier's pulse grid, so triggers exactly one period apart never wait longer; the
        emulator draws each trigger's wait on its own, so the period is kept less one amplifier period."""
        t = np.asarray(t, dtype=float)
        if not len(t):
            return t
        period = self._picker_gap()
        k = np.arange(len(t))
        # t'_i = max(t_i, t'_{i-1} + period), t'_{-1} = last pulse: i*period + running max of (t_j - j*period)
        out = k * period + np.maximum.accumulate(np.maximum(t - k * period, self.last_pulse_t + period))
        return out

    def _picker_gap(self) -> float:
        """Shortest time between two pulses the emulated picker lets through (see `release_times`)."""
        return 1.0 / self.output_frequency_hz - (1.0 / self.base_rate_hz if self.pp_divider > 1 else 0.0)

    def _emitted(self, t_last: float, light: bool) -> None:
        if light:
            self.last_pulse_t = max(self.last_pulse_t, t_last)

    def energy_uj(self) -> float:
        return self.max_pulse_energy_uj * self.attenuator_percent / 100.0

    def state_name(self) -> str:
        if self.interlock_open:
            return "Interlock"
        return "Operational" if self.output_enabled else "StandingBy"

    def emits(self) -> bool:
        return self.output_enabled and self.gate and not self.interlock_open

    def trigger_jitter(self, n: int) -> np.ndarray:
        """Delay from a trigger edge to the next amplified pulse: uniform in one amplifier period."""
        return self.rng.uniform(0.0, 1.0 / self.base_rate_hz, n)

    def fire(self, t, x_um, y_um, z_um, source: str) -> int:
        """Record pulses at times t / positions (arrays; t from `release_times`: the caller places the
        pulses where the stage is at those times); returns the number that gave light."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        n = len(t)
        if n == 0:
            return 0
        with self.lock:
            light = self.emits()
            self._emitted(float(t[-1]), light)
            if light:
                energy = self.energy_uj() * (1.0 + self.energy_rms * self.rng.standard_normal(n))
                self.fired += n
            else:
                energy = np.zeros(n)
                self.blocked += n
        if self.log is not None:
            bx = np.broadcast_to
            self.log.write_many(t, bx(x_um, (n,)), bx(y_um, (n,)), bx(z_um, (n,)), energy,
                                np.full(n, int(light)), source)
        return n if light else 0

    def fire_one(self, t: float, x_um: float, y_um: float, z_um: float, source: str) -> int:
        """`fire` for a single trigger, without numpy (the step-mode hot path: the stage is at rest, so
        a wait for the pulse picker's period moves the pulse's time, not its place). Returns 1 if lit."""
        with self.lock:
            t = max(t, self.last_pulse_t + self._picker_gap())
            light = self.emits()
            self._emitted(t, light)
            if light:
                energy = self.energy_uj() * (1.0 + self.energy_rms * self.prng.gauss(0.0, 1.0))
                self.fired += 1
            else:
                energy = 0.0
                self.blocked += 1
        if self.log is not None:
            self.log.write_line(f"{t:.9f},{x_um:.5f},{y_um:.5f},{z_um:.5f},{energy:.5f},{int(light)},{source}\n",
                                {"t_s": t, "x_um": x_um, "y_um": y_um, "z_um": z_um, "energy_uj": energy,
                                 "gate": int(light), "source": source})
        return int(light)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
