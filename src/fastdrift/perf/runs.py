"""Benchmark runs: reading pytest-benchmark JSON, fastdrift run files and (benchmark, value[, unit])
tables; writing run files; the environment a run was measured on.

A *run file* (``--fastdrift-save``) is one :mod:`fastdrift.codec` envelope of kind
:attr:`~fastdrift.codec.Kind.PERF_RUN`: the environment as JSON, then per benchmark its name,
unit, values per call, its timings -- exact (float64, in the order the rounds ran) up to
:data:`EXACT_MAX` rounds; above, a t-digest with the round count and the blocks' log-medians
(:func:`fastdrift.perf.stats.block_log_medians`) -- and the machine-speed probes taken between
its rounds (:mod:`fastdrift.perf.probe`), when there were any.  A digest is read back as
``min(n, DIGEST_POINTS)`` values at evenly spaced quantiles.

Every benchmark that cannot be compared as it stands (missing rounds, non-positive or
non-finite timings, too few rounds, an unknown unit) keeps a ``problem`` line and no timings:
the comparison lists it instead of comparing it.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..codec import MAGIC, Kind, Reader, Writer, decode, encode
from ..errors import CorruptStateError, InvalidInputError
from .probe import ProbeRecord
from .stats import block_log_medians

__all__ = ["Bench", "Run", "read_run", "read_runs", "read_baseline", "machine_dir", "same_machine", "NoBaselineForMachine",
           "run_file_in", "run_files", "write_run", "run_from_timings", "environment", "EXACT_MAX", "DIGEST_POINTS",
           "MIN_ROUNDS", "MACHINE_KEYS"]

#: rounds stored exactly in a run file; more are stored as a t-digest
EXACT_MAX = 10_000
#: values a stored t-digest is expanded to when read
DIGEST_POINTS = 20_000
#: fewest rounds a side needs to be compared
MIN_ROUNDS = 3
_PAYLOAD_LAYOUT = 2
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_FORMATS = ("pytest-benchmark JSON (bench/run.py writes it), a fastdrift run file (--fastdrift-save), "
            "or Parquet/CSV with columns benchmark, value[, unit]")


@dataclass
class Bench:
    """One benchmark of a run: sorted timings in seconds per call (or a summary), or a problem."""

    name: str
    values: Optional[np.ndarray] = None  #: sorted, positive, finite seconds per call
    summary: Optional[dict] = None  #: median, iqr (seconds), rounds: when no round was saved
    unit: str = "s"  #: "s" for times, else the rate unit the values were given in (``ops/s``)
    per_call: Optional[float] = None  #: values processed per call (``extra_info["n"]``)
    problem: str = ""  #: why it cannot be compared ("" when it can)
    blocks: Optional[np.ndarray] = None  #: log-median of each block of consecutive rounds; None unknown
    rounds: int = 0  #: rounds it ran (the blocks' and probes' round counts refer to these)
    probe: Optional[ProbeRecord] = None  #: the machine-speed probes taken between its rounds
    probe_problem: str = ""  #: why a probe that was saved cannot be used ("" when none was saved)


@dataclass
class Run:
    """The benchmarks of one file, with the environment it records (possibly empty)."""

    path: str
    source: str
    env: dict = field(default_factory=dict)
    benchmarks: Dict[str, Bench] = field(default_factory=dict)


def _cpu_of(cpuinfo: str) -> str:
    """The first processor's model name in ``/proc/cpuinfo`` text, with its family and model numbers
    when given: virtual machines often show a bare brand ("AMD EPYC") for CPUs of different
    generations, whose timings differ several-fold.  "" when there is no model name."""
    first = cpuinfo.split("\n\n", 1)[0]
    fields = {}
    for ln in first.splitlines():
        k, sep, v = ln.partition(":")
        if sep:
            fields.setdefault(k.strip(), v.strip())
    name = fields.get("model name", "")
    if name and fields.get("cpu family") and fields.get("model"):
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return name


def environment() -> dict:
    """This process's benchmarking environment: CPU model and cores, Python, numpy, pyarrow,
    fastdrift's kernel backend per family, the compiled kernel build and its SIMD path."""
    import hashlib

    import pyarrow

    from .. import kernels
    from ..kernels.native import simd_path
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = _cpu_of(fh.read()) or cpu
    except OSError:
        pass
    import importlib.util
    try:  # the compiled kernels' identity: a hash of the shared object this process loads
        with open(importlib.util.find_spec("fastdrift._native").origin, "rb") as fh:
            build = hashlib.sha256(fh.read()).hexdigest()[:16]
    except (AttributeError, ImportError, OSError, TypeError):
        build = "unavailable"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "pyarrow": pyarrow.__version__,
            "backend": {f: kernels.get_backend(f) for f in sorted(kernels.DEFAULT_BACKENDS)},
            "kernel_build": build, "simd": simd_path()}


def _checked(name: str, values, rounds: Optional[int] = None) -> Bench:
    """A Bench of raw timings (seconds), or one with the problem that keeps it out."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if rounds is not None and x.size < rounds:
        return Bench(name, problem=f"missing rounds: {x.size} timings saved of the {rounds} rounds it ran")
    xs = np.sort(x)  # nan sorts last: the two ends tell whether anything is wrong
    if xs.size and not (xs[0] > 0 and np.isfinite(xs[-1])):
        bad = ~np.isfinite(x)
        if bad.any():
            return Bench(name, problem=f"{int(bad.sum())} non-finite timings (nan/inf)")
        return Bench(name, problem=f"{int((x <= 0).sum())} zero or negative timings (a clock below its "
                                   f"resolution, or not a time)")
    if x.size < MIN_ROUNDS:
        return Bench(name, problem=f"{x.size} rounds: at least {MIN_ROUNDS} needed")
    return Bench(name, values=xs, blocks=block_log_medians(x), rounds=x.size)


def _attach_probe(b: Bench, probe, what: str) -> None:
    """Attach a probe record (a ProbeRecord or its dict form) after checking it against the
    benchmark's rounds; a probe that does not fit is kept out, with the reason."""
    if probe is None or b.values is None:
        return
    try:
        rec = probe if isinstance(probe, ProbeRecord) else ProbeRecord.from_dict(probe, what)
    except InvalidInputError as exc:
        b.probe_problem = str(exc)
        return
    if rec.at[-1] > b.rounds:
        b.probe_problem = f"{what}: taken after round {int(rec.at[-1])} of {b.rounds}"
        return
    b.probe = rec


def run_from_timings(timings: Dict[str, object], env: Optional[dict] = None, path: str = "<memory>",
                     per_call: Optional[Dict[str, float]] = None,
                     probes: Optional[Dict[str, ProbeRecord]] = None) -> Run:
    """A Run of benchmark name -> timings in seconds (every round, in the order they ran), with
    each benchmark's machine-speed probes when given."""
    run = Run(path, "timings", dict(env or {}))
    for name, x in timings.items():
        b = _checked(name, x)
        b.per_call = (per_call or {}).get(name)
        _attach_probe(b, (probes or {}).get(name), f"{name}: probe")
        run.benchmarks[name] = b
    return run


def _recorded_env(rec) -> dict:
    """The keys of :func:`environment` found in ``rec`` (read from a file: anything else, and values
    of another shape, are left out)."""
    if not isinstance(rec, dict):
        return {}
    out = {}
    for k in ("cpu", "python", "numpy", "pyarrow", "kernel_build", "simd"):
        if isinstance(rec.get(k), str):
            out[k] = rec[k]
    if isinstance(rec.get("cores"), int) and not isinstance(rec.get("cores"), bool):
        out["cores"] = rec["cores"]
    b = rec.get("backend")
    if isinstance(b, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in b.items()):
        out["backend"] = dict(b)
    return out


def _pytest_benchmark(path: str, doc) -> Run:
    if not (isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list)
            and all(isinstance(b, dict) and isinstance(b.get("stats"), dict) for b in doc["benchmarks"])):
        raise InvalidInputError(f"{path}: a JSON file, but not pytest-benchmark's (no 'benchmarks' list of "
                                f"entries with 'stats'); perf compare reads {_FORMATS}")
    mi = doc.get("machine_info") if isinstance(doc.get("machine_info"), dict) else {}
    cpu = mi.get("cpu") if isinstance(mi.get("cpu"), dict) else {}
    env = {k: v for k, v in (("cpu", cpu.get("brand_raw")), ("cores", cpu.get("count")),
                             ("python", mi.get("python_version"))) if v is not None}
    env.update(_recorded_env(mi.get("fastdrift")))  # fastdrift's plugin records its own environment
    opts = [b.get("options") for b in doc["benchmarks"] if isinstance(b.get("options"), dict)]
    if opts and isinstance(opts[0].get("timer"), str):  # the clock of the rounds: "perf_counter"
        env["timer"] = opts[0]["timer"].rsplit(".", 1)[-1]
    run = Run(path, "pytest-benchmark", env)
    for i, b in enumerate(doc["benchmarks"]):
        name = str(b.get("fullname") or b.get("name") or f"#{i}")
        st = b["stats"]
        rounds = st.get("rounds")
        rounds = int(rounds) if isinstance(rounds, (int, float)) and math.isfinite(rounds) else None
        if "data" in st:
            data = st["data"]
            if not isinstance(data, list) or not all(isinstance(v, (int, float)) for v in data):
                bench = Bench(name, problem="'data' is not a list of numbers")
            else:
                bench = _checked(name, data, rounds)
        else:
            summ = {k: st.get(k) for k in ("median", "iqr")}
            summ["rounds"] = rounds
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in summ.values()):
                bench = Bench(name, problem="no timings saved and no median/iqr/rounds in its stats")
            elif summ["median"] <= 0 or summ["iqr"] < 0:
                bench = Bench(name, problem=f"median {summ['median']!r}, iqr {summ['iqr']!r}: not timings")
            elif summ["rounds"] < MIN_ROUNDS:
                bench = Bench(name, problem=f"{summ['rounds']} rounds: at least {MIN_ROUNDS} needed")
            else:
                bench = Bench(name, summary=summ)
        info = b.get("extra_info") if isinstance(b.get("extra_info"), dict) else {}
        n = info.get("n")
        bench.per_call = float(n) if isinstance(n, (int, float)) and n > 0 else None
        _attach_probe(bench, info.get("fastdrift_probe"), "extra_info['fastdrift_probe']")
        run.benchmarks[name] = bench
    return run


def _table(path: str) -> Run:
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        if path.lower().endswith((".csv", ".csv.gz")):
            from pyarrow import csv
            t = csv.read_csv(path)
        else:
            import pyarrow.parquet as pq
            cols = set(pq.read_schema(path).names)  # names and units read dictionary-encoded: no hashing
            t = pq.read_table(path, read_dictionary=[c for c in ("benchmark", "unit") if c in cols])
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInputError(f"{path}: {exc}") from None
    for col in ("benchmark", "value"):
        if col not in t.column_names:
            raise InvalidInputError(f"{path}: no column {col!r}; a table needs columns benchmark, value[, unit]")
    if not pa.types.is_integer(t["value"].type) and not pa.types.is_floating(t["value"].type):
        raise InvalidInputError(f"{path}: column 'value' is {t['value'].type}, not numbers")
    run = Run(path, "table")
    if t.num_rows == 0:
        return run
    t = t.unify_dictionaries()

    def encoded(col):
        if not pa.types.is_dictionary(col.type):
            col = pc.dictionary_encode(pc.cast(col, pa.string()))
        return col.combine_chunks()
    names = encoded(t["benchmark"])
    codes = names.indices.to_numpy(zero_copy_only=False)
    values = pc.cast(t["value"], pa.float64()).to_numpy(zero_copy_only=False)  # nulls -> nan
    order = np.argsort(codes, kind="stable")  # rows of one benchmark together, in file order
    bounds = np.searchsorted(codes[order], np.arange(len(names.dictionary) + 1))
    if "unit" in t.column_names:
        u = encoded(t["unit"])
        unit_names = [str(v).strip() for v in u.dictionary.to_pylist()]
        ucodes = u.indices.fill_null(-1).to_numpy(zero_copy_only=False)[order]
    for k, name in enumerate(names.dictionary.to_pylist()):
        rows = order[bounds[k]:bounds[k + 1]]
        name = "<null>" if name is None else name
        unit = "s"
        if "unit" in t.column_names:
            ub = ucodes[bounds[k]:bounds[k + 1]]
            if ub.min() != ub.max() or ub[0] < 0:
                uc = np.unique(ub)
                us = sorted(unit_names[i] if i >= 0 else "<null>" for i in uc)
                run.benchmarks[name] = Bench(name, problem=f"several units {us}" if uc.size > 1 else "no unit")
                continue
            unit = unit_names[ub[0]]
        x = values[rows]
        if unit in _TIME_UNITS:
            b = _checked(name, x * _TIME_UNITS[unit])
        elif unit.endswith("/s"):  # a rate: compared as time per unit of work (1 / rate)
            b = _checked(name, x)
            if b.values is not None:  # in round order, for the blocks
                b = _checked(name, 1.0 / x)
            b.unit = unit
        else:
            b = Bench(name, problem=f"unit {unit!r} is neither a time (s, ms, us, ns) nor a rate (…/s)")
        run.benchmarks[name] = b
    return run


def _read_probe(r: Reader, path: str, name: str) -> Optional[ProbeRecord]:
    flag = r.u8("probe flag")
    if flag == 0:
        return None
    if flag != 1:
        raise CorruptStateError(f"{path}: benchmark {name!r}: probe flag {flag} unknown")
    version = r.u8("probe version")
    mem, cpu, at = r.f64_array("probe mem"), r.f64_array("probe cpu"), r.u64_array("probe at")
    try:
        return ProbeRecord.from_parts(mem, cpu, at, version, f"{path}: benchmark {name!r}: probe")
    except InvalidInputError as exc:
        raise CorruptStateError(str(exc)) from None


def _run_file(path: str, blob: bytes) -> Run:
    from ..sketches import TDigest
    _, _, payload = decode(blob, expected_kind=Kind.PERF_RUN)
    r = Reader(payload, f"{path}: fastdrift run")
    layout = r.u8("layout")
    if layout not in (1, _PAYLOAD_LAYOUT):
        raise CorruptStateError(f"{path}: run payload layout {layout} unknown (this fastdrift reads 1 and "
                                f"{_PAYLOAD_LAYOUT}); upgrade fastdrift")
    env = r.json("environment")
    run = Run(path, "fastdrift run", env if isinstance(env, dict) else {})
    for _ in range(r.count("benchmarks", min_item_size=41 if layout == 1 else 34)):
        name, unit, per_call = r.string("name"), r.string("unit"), r.f64("per call")
        if layout == 1:
            r.f64("batch variance")  # layout 1: the digest's round order is not recoverable
        how = r.u8("storage")
        if how == 0:
            b = _checked(name, r.f64_array("timings"))
        elif how == 1:
            rounds = r.u64("rounds") if layout >= 2 else None
            d = TDigest.from_bytes(r.blob("digest"))
            blocks = r.f64_array("blocks") if layout >= 2 else None
            if rounds is not None and rounds != d.count:
                raise CorruptStateError(f"{path}: benchmark {name!r}: {rounds} rounds but a digest of {d.count}")
            if blocks is not None and blocks.size and not (blocks.size >= 2 and np.all(np.isfinite(blocks))):
                raise CorruptStateError(f"{path}: benchmark {name!r}: block log-medians not finite")
            if d.finite_count != d.count:
                b = Bench(name, problem=f"{d.count - d.finite_count} non-finite timings (nan/inf)")
            elif d.count and d.min <= 0:
                b = Bench(name, problem="zero or negative timings")
            else:
                k = min(d.count, DIGEST_POINTS)
                b = _checked(name, d.quantile(np.linspace(0.0, 1.0, k)) if k else [])
                if b.values is not None:  # the expansion has no round order: the stored blocks
                    b.blocks = blocks if blocks is not None and blocks.size else None
                    b.rounds = int(d.count)
        else:
            raise CorruptStateError(f"{path}: benchmark {name!r}: storage {how} unknown")
        b.unit, b.per_call = unit, (per_call if per_call > 0 else None)
        if layout >= 2:
            _attach_probe(b, _read_probe(r, path, name), f"{name}: probe")
        run.benchmarks[name] = b
    r.done()
    return run


def write_run(path: str, timings: Dict[str, object], env: dict,
              per_call: Optional[Dict[str, float]] = None,
              probes: Optional[Dict[str, ProbeRecord]] = None) -> None:
    """Write a run file: each benchmark's timings (seconds, in the order the rounds ran) exact up
    to EXACT_MAX rounds, a t-digest (compression 200) with the blocks' log-medians above, its
    machine-speed probes when given, and the environment."""
    from ..sketches import TDigest
    w = Writer().u8(_PAYLOAD_LAYOUT).json(env)
    w.u64(len(timings))
    for name, x in timings.items():
        x = np.asarray(x, dtype=np.float64).ravel()
        w.string(name).string("s").f64(float((per_call or {}).get(name) or 0.0))
        if x.size <= EXACT_MAX:
            w.u8(0).f64_array(x)  # in the order the rounds ran
        else:
            blocks = block_log_medians(x) if np.all(x > 0) and np.all(np.isfinite(x)) else None
            w.u8(1).u64(x.size).blob(TDigest(200).update(x).to_bytes())
            w.f64_array(blocks if blocks is not None else np.empty(0))
        p = (probes or {}).get(name)
        if p is None:
            w.u8(0)
        else:
            w.u8(1).u8(p.version).f64_array(p.mem).f64_array(p.cpu).u64_array(p.at.astype(np.uint64))
    blob = encode(Kind.PERF_RUN, b"", w.getvalue())
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, path)


def read_run(path: str) -> Run:
    """Read a benchmark run in any supported format (by content; tables by suffix)."""
    low = path.lower()
    if low.endswith((".parquet", ".pq", ".csv", ".csv.gz")):
        return _table(path)
    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except OSError as exc:
        raise InvalidInputError(f"{path}: {exc.strerror or exc}") from None
    if blob[:4] == MAGIC:
        return _run_file(path, blob)
    try:
        doc = json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError(f"{path}: not JSON, a fastdrift run file, Parquet or CSV; perf compare "
                                f"reads {_FORMATS}") from None
    return _pytest_benchmark(path, doc)


#: file names a directory of runs is read from (its other files are ignored)
RUN_SUFFIXES = (".fdr", ".json", ".parquet", ".pq", ".csv", ".csv.gz")
#: the environment keys that name the machine: timings from machines differing in one of them say
#: nothing about each other (the kernel build, backends and library versions are compared instead)
MACHINE_KEYS = ("cpu", "cores", "simd", "timer")


class NoBaselineForMachine(InvalidInputError):
    """A baseline directory holds runs of other machines only (``machines``: subdirectory -> its
    environment's :data:`MACHINE_KEYS`)."""

    def __init__(self, message: str, machines: Dict[str, dict]):
        super().__init__(message)
        self.machines = machines


def run_files(path: str) -> List[str]:
    """The run files directly in directory ``path`` (names ending in :data:`RUN_SUFFIXES`), sorted."""
    return sorted(f for f in os.listdir(path) if f.lower().endswith(RUN_SUFFIXES)
                  and os.path.isfile(os.path.join(path, f)))


def same_machine(a: dict, b: dict) -> bool:
    """True when two environments agree on every :data:`MACHINE_KEYS` entry both record."""
    return all(a[k] == b[k] for k in MACHINE_KEYS if k in a and k in b)


def machine_dir(env: dict) -> str:
    """The subdirectory a baseline of several machines keeps ``env``'s machine's runs in: its CPU
    (with family and model), cores and SIMD path, as a lower-case slug
    (``amd-epyc-family-25-model-1-2-cores-avx2``)."""
    text = f"{env.get('cpu') or 'unknown cpu'} {env.get('cores') or '?'} cores {env.get('simd') or 'no simd'}"
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def read_baseline(path: str, env: dict) -> List[Run]:
    """The baseline runs at ``path`` for the machine ``env`` describes.  ``path`` is what
    :func:`read_runs` reads (a run file, or a directory of runs: returned as they are, whichever
    machine they were saved on, their environment compared later), or a directory with no runs of
    its own and one subdirectory of runs per machine (:func:`machine_dir` names it): the runs of
    the subdirectory whose environment is ``env``'s machine (:func:`same_machine`).  Raises
    :class:`NoBaselineForMachine` when no subdirectory is."""
    if not os.path.isdir(path) or run_files(path):
        return read_runs([path])
    subdirs = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))
                     and run_files(os.path.join(path, d)))
    if not subdirs:
        return read_runs([path])  # the error of a directory without runs
    machines = {}
    for d in subdirs:
        runs = read_runs([os.path.join(path, d)])
        if same_machine(runs[0].env, env):
            return runs
        machines[d] = {k: runs[0].env.get(k) for k in MACHINE_KEYS}
    here = ", ".join(f"{k} {env[k]!r}" for k in MACHINE_KEYS if k in env)
    raise NoBaselineForMachine(
        f"{path}: no runs saved on this machine ({here}); it holds runs of "
        f"{', '.join(sorted(machines))}. Save this machine's as {os.path.join(path, machine_dir(env))}/ "
        f"(docs/performance.md)", machines)


def read_runs(paths) -> List[Run]:
    """Read several runs; a directory stands for the runs in it (files ending in
    :data:`RUN_SUFFIXES`, in name order), so a baseline can be a directory of saved runs."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            files = run_files(path)
            if not files:
                raise InvalidInputError(f"{path}: a directory without runs (files ending in "
                                        f"{', '.join(RUN_SUFFIXES)})")
            out += [read_run(os.path.join(path, f)) for f in files]
        else:
            out.append(read_run(path))
    return out


def run_file_in(directory: str, keep: Optional[int] = None) -> str:
    """A new run file's path in ``directory`` (created when missing), named so that name order
    is time order (``run-<UTC time>-<pid>.fdr``); with ``keep``, the oldest ``.fdr`` files are
    removed so that ``keep`` remain once the new one is written."""
    import time
    os.makedirs(directory, exist_ok=True)
    if keep is not None:
        old = sorted(f for f in os.listdir(directory) if f.startswith("run-") and f.endswith(".fdr"))
        for f in old[:max(0, len(old) - (keep - 1))]:
            os.remove(os.path.join(directory, f))
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.6f}"[1:]
    return os.path.join(directory, f"run-{stamp}-{os.getpid()}.fdr")
