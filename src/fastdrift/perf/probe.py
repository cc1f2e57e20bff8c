"""The machine-speed reference of a benchmark run: two fixed calibration kernels timed between
the benchmark's rounds, in the same process, so that a comparison of two runs can divide out
how fast the machine was during each.

On a shared machine the speed a process gets moves by tens of percent from one minute to the
next (other jobs take cores, memory bandwidth and cache).  A benchmark's timings alone cannot
tell that from a change of the code.  A *fixed* piece of work measured alongside the benchmark
sees the machine's share and not the code: its timings in the two runs give the speed factor
between them, and the benchmark's ratio divided by the probe's ratio (a ratio of ratios) is
the code's change.

The probes (:func:`probe_once`):

* ``mem``: ``np.sum`` over a fixed array of :data:`MEM_VALUES` float64 (8 MiB, beyond the
  private caches): bound by memory bandwidth;
* ``cpu``: a fixed scalar loop of :data:`CPU_LOOPS` iterations in the interpreter: bound by one
  core's instruction throughput, in the first-level cache.

:class:`Interleaver` decides when to take them: once before the first round, after a round
whenever the probes' time so far is below :data:`PROBE_SHARE` of the rounds' time, and once
after the last round, so the probes follow the benchmark through time at a bounded cost.  Each
probe is recorded with ``at``, the number of rounds completed when it was taken.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InvalidInputError

__all__ = ["ProbeRecord", "Interleaver", "probe_once", "MEM_VALUES", "CPU_LOOPS", "PROBE_SHARE", "PROBE_VERSION"]

#: values summed by the memory-bound probe (8 MiB of float64)
MEM_VALUES = 1 << 20
#: iterations of the compute-bound probe's scalar loop
CPU_LOOPS = 20_000
#: the probes' time is kept below this share of the benchmark rounds' time
PROBE_SHARE = 0.25
#: the probe definition: records of different versions are not compared
PROBE_VERSION = 1

_ARRAY: Optional[np.ndarray] = None


def _array() -> np.ndarray:
    global _ARRAY
    if _ARRAY is None:
        _ARRAY = np.ones(MEM_VALUES)  # touched once here: no page faults inside the timed probe
        _ARRAY.sum()
    return _ARRAY


def _loop(n: int) -> int:
    s = 0
    for i in range(n):
        s += i ^ (s & 7)
    return s


def probe_once(timer=time.perf_counter):
    """Time each probe once; returns (mem seconds, cpu seconds)."""
    a = _array()
    t0 = timer()
    a.sum()
    t1 = timer()
    _loop(CPU_LOOPS)
    t2 = timer()
    return t1 - t0, t2 - t1


@dataclass
class ProbeRecord:
    """The probes taken during one benchmark: seconds per probe, and the rounds completed when
    each was taken (non-decreasing)."""

    mem: np.ndarray
    cpu: np.ndarray
    at: np.ndarray
    version: int = PROBE_VERSION

    def to_dict(self) -> dict:
        return {"version": self.version, "mem": self.mem.tolist(), "cpu": self.cpu.tolist(),
                "at": self.at.tolist()}

    @classmethod
    def from_parts(cls, mem, cpu, at, version=PROBE_VERSION, what: str = "probe") -> "ProbeRecord":
        """A checked record: equal lengths, at least 2 probes, positive finite times,
        non-decreasing non-negative round counts; :class:`InvalidInputError` otherwise."""
        try:
            m = np.asarray(mem, dtype=np.float64).ravel()
            c = np.asarray(cpu, dtype=np.float64).ravel()
            a = np.asarray(at, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise InvalidInputError(f"{what}: mem, cpu and at must be lists of numbers") from None
        if not (m.size == c.size == a.size):
            raise InvalidInputError(f"{what}: mem, cpu and at have different lengths ({m.size}, {c.size}, {a.size})")
        if m.size < 2:
            raise InvalidInputError(f"{what}: {m.size} probes, at least 2 needed")
        if not (np.all(np.isfinite(m) & (m > 0)) and np.all(np.isfinite(c) & (c > 0))):
            raise InvalidInputError(f"{what}: zero, negative or non-finite probe times")
        if not (np.all(np.isfinite(a)) and a[0] >= 0 and np.all(np.diff(a) >= 0) and np.all(a == np.floor(a))):
            raise InvalidInputError(f"{what}: 'at' is not a non-decreasing list of round counts")
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidInputError(f"{what}: version {version!r} is not an integer")
        return cls(m, c, a.astype(np.int64), version)

    @classmethod
    def from_dict(cls, doc, what: str = "probe") -> "ProbeRecord":
        if not isinstance(doc, dict) or not {"mem", "cpu", "at"} <= set(doc):
            raise InvalidInputError(f"{what}: expected an object with mem, cpu and at")
        return cls.from_parts(doc["mem"], doc["cpu"], doc["at"], doc.get("version", PROBE_VERSION), what)


class Interleaver:
    """Takes the probes between one benchmark's rounds (see the module docstring)."""

    def __init__(self, share: float = PROBE_SHARE, timer=time.perf_counter):
        self.share = share
        self.timer = timer
        self.rounds = 0
        self.round_time = 0.0
        self.probe_time = 0.0
        self._mem, self._cpu, self._at = [], [], []

    def _take(self) -> None:
        m, c = probe_once(self.timer)
        self._mem.append(m)
        self._cpu.append(c)
        self._at.append(self.rounds)
        self.probe_time += m + c

    def start(self) -> None:
        """Before the first round."""
        if not self._at:
            self._take()

    def after_round(self, seconds: float) -> None:
        """After each timed round (outside its timing)."""
        self.rounds += 1
        if math.isfinite(seconds) and seconds > 0:
            self.round_time += seconds
        if self.probe_time < self.share * self.round_time:
            self._take()

    def finish(self) -> Optional[ProbeRecord]:
        """After the last round; the record (None when no round ran)."""
        if self.rounds == 0:
            return None
        if self._at[-1] != self.rounds:
            self._take()
        return ProbeRecord(np.array(self._mem), np.array(self._cpu), np.array(self._at, dtype=np.int64))
