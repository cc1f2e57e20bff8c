"""The ``fastdrift`` command: ``profile``, ``compare``, ``demo``, ``bench``, ``perf``, ``rules``, ``aggregate``.

Exit status (``compare`` is a deployment gate, so 1 and 2 mean alerts, never errors):

====  ==========================================================================
0     ran; nothing fired (``compare``), or the command succeeded
1     ``compare``: a warning alert fired (no critical one); ``perf compare``, ``bench --baseline``:
      a warning-level regression
2     ``compare``: a critical alert fired; ``perf compare``, ``bench --baseline``: a critical regression
3     an unexpected error (a bug: rerun with ``--debug`` for the traceback)
4     unusable input: no such file, unknown format, undecodable file, no column that can be
      counted, bad config/rules
5     schema mismatch: a reference column missing from CUR or of a type its sketch cannot count,
      other bins
6     a corrupt profile file
64    bad command-line usage
====  ==========================================================================

Errors print one line on stderr (``fastdrift <command>: error: <what>``) naming the
file and column; ``--debug`` shows the traceback instead.  A column whose type is not
counted (nested, binary) is not an error: one line on stderr names it and says why
(``fastdrift <command>: column 'x' not counted: <why>``), and ``compare`` reports it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Optional

from .errors import CorruptStateError, IncompatibleSketchError, InvalidInputError, SchemaError

if TYPE_CHECKING:
    from .sketches import Profile

# The sketches, fastdrift.dataset and .scan (pyarrow.dataset), .report and .monitor.config (the
# monitor package) are imported by the commands that use them: `fastdrift --help`, and `fastdrift
# bench` (which hands over to pytest), stay fast (python -X importtime -m fastdrift.cli --help).

__all__ = ["main", "Progress", "EXIT_ERROR", "EXIT_INPUT", "EXIT_SCHEMA", "EXIT_CORRUPT", "EXIT_USAGE"]

EXIT_ERROR, EXIT_INPUT, EXIT_SCHEMA, EXIT_CORRUPT, EXIT_USAGE = 3, 4, 5, 6, 64
PROFILE_SUFFIX = ".fdp"


class _Usage(Exception):
    """A command-line usage error (exit 64, never argparse's 2: 2 means "critical" here)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Usage(f"{self.prog}: {message}")


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, _Usage):
        return EXIT_USAGE
    if isinstance(exc, CorruptStateError):
        return EXIT_CORRUPT
    if isinstance(exc, (SchemaError, IncompatibleSketchError)):
        return EXIT_SCHEMA
    if isinstance(exc, (InvalidInputError, OSError)):
        return EXIT_INPUT
    return EXIT_ERROR


def _human(n: float, unit: str = "") -> str:
    for u in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{u}{unit}" if u == "" else f"{n:.1f}{u}{unit}"
        n /= 1000
    return f"{n:.1f}P{unit}"


class Progress:
    """A one-line progress bar on a stream: rows, bytes, rate, ETA.

    Off (prints nothing) unless ``enabled`` and the stream is a terminal: a log file or a
    pipe must not fill with carriage returns.  Thread-safe: the scan's workers call :meth:`add`
    (:class:`fastdrift.scan.FileScan` reports each pass to it).
    """

    def __init__(self, stream=None, enabled: bool = True, interval: float = 0.2):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(enabled and isatty is not None and isatty())
        self.interval = interval
        self._lock = threading.Lock()
        self.rows = self.bytes = 0
        self.total_rows: Optional[int] = None
        self.total_file_bytes = self.file_bytes_done = 0
        self.label = ""
        self._t0 = self._last = time.perf_counter()

    def start(self, label: str, total_rows: Optional[int], total_file_bytes: int = 0) -> None:
        with self._lock:
            self.label, self.total_rows = label, total_rows
            self.total_file_bytes, self.file_bytes_done = total_file_bytes, 0
            self.rows = self.bytes = 0
            self._t0 = time.perf_counter()

    def file_done(self, nbytes: int) -> None:
        """A whole file was read: the ETA's measure when the row count is unknown (CSV, JSON)."""
        with self._lock:
            self.file_bytes_done += nbytes

    def add(self, rows: int, nbytes: int) -> None:
        with self._lock:
            self.rows += rows
            self.bytes += nbytes
            now = time.perf_counter()
            if self.enabled and now - self._last >= self.interval:
                self._last = now
                self._draw(now)

    def line(self, now: Optional[float] = None) -> str:
        """The bar's text (also what tests check)."""
        now = time.perf_counter() if now is None else now
        dt = max(now - self._t0, 1e-9)
        rate = self.rows / dt
        parts = [self.label, f"{self.rows:,} rows"]
        if self.total_rows:
            frac = min(self.rows / self.total_rows, 1.0)
            eta = (self.total_rows - self.rows) / rate if rate > 0 else float("nan")
            parts[1] = f"{self.rows:,}/{self.total_rows:,} rows ({frac:.0%})"
            parts.append(f"ETA {eta:.0f}s" if eta == eta else "ETA ?")
        elif self.total_file_bytes:
            frac = min(self.file_bytes_done / self.total_file_bytes, 1.0)
            eta = dt * (1 - frac) / frac if frac > 0 else float("nan")
            parts.append(f"files {frac:.0%}, ETA {eta:.0f}s" if eta == eta else "ETA ?")
        parts.insert(2, f"{_human(self.bytes, 'B')} ({_human(self.bytes / dt, 'B/s')})")
        parts.insert(3, f"{_human(rate, ' rows/s')}")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now)[:200] + "\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            with self._lock:
                self._draw(time.perf_counter())
                self.stream.write("\n")
                self.stream.flush()


# -- shared helpers -----------------------------------------------------------------------------------

def _is_profile_file(path: str) -> bool:
    """A saved profile: the ``.fdp`` suffix, or a file that starts with the sketch magic."""
    if path.endswith(PROFILE_SUFFIX):
        return True
    if not os.path.isfile(path):
        return False
    from .codec import MAGIC
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def _read_profile_file(path: str):
    """A saved profile with its source schema and evidence rows (:class:`~fastdrift.profilefile.ProfileFile`)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read profile: {exc.strerror or exc}") from None
    from .profilefile import ProfileFile
    try:
        return ProfileFile.from_bytes(data)
    except CorruptStateError as exc:
        raise CorruptStateError(f"{path}: not a valid fastdrift profile: {exc}") from None


def _evidence_sample(config, columns):
    """The redacted row sample a compare's alerts carry (the config's evidence: section)."""
    from .monitor.config import MonitorConfig
    return (config or MonitorConfig()).evidence_sample(columns)


def _config(args):
    """The monitor config (``--config``), with the ``--prediction`` and ``--label`` roles folded in."""
    from .monitor.config import MonitorConfig
    config = None
    if getattr(args, "config", None):
        from .monitor.config import load_config
        config = load_config(args.config)
    for role in ("prediction", "label"):
        v = getattr(args, role, None)
        if v is None:
            continue
        have = getattr(config, role) if config is not None else None
        if have not in (None, v):
            raise _Usage(f"--{role} {v!r} but the config's {role} is {have!r}")
        if role == "label" and (config is None or config.prediction is None):
            raise _Usage("--label needs the prediction column: --prediction COL, or the config's prediction")
        config = dataclasses.replace(config or MonitorConfig(), **{role: v})
    scores = getattr(args, "scores", None)
    if scores is not None and config is not None and config.label is not None:
        config = dataclasses.replace(config, labels=dataclasses.replace(config.labels, scores=scores))
    return config


def _progress(args):
    return Progress(sys.stderr, enabled=not args.quiet)


def _kinds(pairs):
    out = {}
    for p in pairs or ():
        if "=" not in p:
            raise _Usage(f"--kind expects COLUMN=numeric|categorical, got {p!r}")
        k, v = p.split("=", 1)
        out[k] = v
    return out


def _profile_paths(paths, args, config, reference=None, evidence=None):
    """Profile data files: (Profile, DataSource).  ``evidence``: an empty RowSample, or a
    callable that makes one from the profiled column names."""
    from .dataset import open_data
    from .scan import plan_columns, profile_data
    from .sketches.profile import skip_reasons, skipped_columns
    src = open_data(paths)
    plans = None
    label = config.label if config is not None else None
    if reference is None:
        cols = [c for c in args.columns.split(",") if c] if getattr(args, "columns", None) else None
        segment_by = _segment_args(args).get("segment_by", ())
        plans = plan_columns(src.schema, config, columns=cols, kinds=_kinds(getattr(args, "kind", None)),
                             bins=getattr(args, "bins", 10), tdigest=not getattr(args, "no_tdigest", False),
                             label=label, segment_by=segment_by)
        skipped = [n for n in skipped_columns(src.schema, plans) if n != label and n not in segment_by]
        for n, why in skip_reasons(src.schema, skipped).items():
            print(f"fastdrift {args.command}: column {n!r} not counted: {why}", file=sys.stderr)
    if callable(evidence):
        evidence = evidence([p.name for p in plans] if plans is not None else list(reference.columns))
    prof = profile_data(src, plans, reference=reference, progress=_progress(args), **_segment_args(args),
                        workers=getattr(args, "workers", None),
                        max_categories=getattr(args, "max_categories", 10_000), evidence=evidence,
                        label=label, prediction=config.prediction if label is not None else None,
                        scores=config.labels.scores if label is not None else "probability")
    return prof, src


def _segment_args(args) -> dict:
    """``segment_by``/``max_segments`` of ``--segment-by`` and ``--max-segments`` (empty: the
    reference's segments, or none)."""
    by = getattr(args, "segment_by", None)
    if not by:
        if getattr(args, "max_segments", None) is not None:
            raise _Usage("--max-segments needs --segment-by")
        return {}
    from .adapters.segments import DEFAULT_MAX_SEGMENTS, check_segment_columns
    cap = args.max_segments if args.max_segments is not None else DEFAULT_MAX_SEGMENTS
    try:
        cols = check_segment_columns([c.strip() for c in by.split(",")], cap)
    except InvalidInputError as exc:
        raise _Usage(f"--segment-by/--max-segments: {exc}") from None
    return {"segment_by": cols, "max_segments": cap}


def _write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # never leave a half-written profile under the final name
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot write: {exc.strerror or exc}") from None


# -- commands ------------------------------------------------------------------------------------------

def _cmd_profile(args) -> int:
    from .profilefile import ProfileFile
    config = _config(args)
    reference = _read_profile_file(args.reference).profile if args.reference else None
    if reference is not None:
        _check_performance(reference, config, args.reference)
    t0 = time.perf_counter()
    samples = []

    def sample(columns):
        samples.append(_evidence_sample(config, columns))
        return samples[-1]
    prof, src = _profile_paths(args.paths, args, config, reference, sample if args.evidence else None)
    dt = time.perf_counter() - t0
    pf = ProfileFile(prof, {f.name: str(f.type) for f in src.schema}, samples[0].rows if samples else [])
    blob = pf.to_bytes()
    _write(args.output, blob)
    what = "current profile on the reference's bins" if reference is not None else "reference profile"
    ev = f", {len(pf.evidence)} evidence rows" if args.evidence else ""
    if prof.performance is not None:
        sk = prof.performance.sketch
        ev += (f", performance of {prof.performance.prediction} against label {prof.performance.label} "
               f"({sk.labelled:,} labelled rows)")
    if prof.segment_by:
        ev += f", {len(prof.segments)} segments by {','.join(prof.segment_by)}"
    print(f"wrote {args.output}: {what}, {prof.rows:,} rows, {len(prof.columns)} columns{ev}, "
          f"{len(blob):,} bytes ({len(src.fragments)} fragments, {src.file_bytes / 1e6:.1f} MB read in "
          f"{dt:.2f}s = {prof.rows / max(dt, 1e-9) / 1e6:.2f}M rows/s)")
    return 0


def _check_performance(prof, config, path: str) -> None:
    """A profile file's performance sketch is the one the label column (``--label`` or the config's)
    and the prediction ask for."""
    label = config.label if config is not None else None
    if label is None:
        return
    perf = prof.performance
    if perf is None:
        raise InvalidInputError(f"{path}: the profile has no performance sketch (no label column): profile "
                                f"the data with --label {label} --prediction {config.prediction}")
    if (perf.label, perf.prediction) != (label, config.prediction):
        raise InvalidInputError(f"{path}: the profile's performance is of {perf.prediction!r} against label "
                                f"{perf.label!r}, not of {config.prediction!r} against {label!r}")


def _load_side(path: str, args, config, reference=None, evidence=None):
    """A profile file, or data profiled now: (Profile, {column: Arrow type} or None, evidence rows)."""
    if _is_profile_file(path):
        pf = _read_profile_file(path)
        if reference is None:
            _check_performance(pf.profile, config, path)
        return pf.profile, pf.schema, pf.evidence
    prof, src = _profile_paths([path], args, config, reference, evidence)
    return prof, {f.name: str(f.type) for f in src.schema}, (evidence.rows if evidence is not None else [])


def _compare(args):
    from .report import compare
    from .schema import check_profiles, schema_changes
    if not 0.0 <= args.threshold <= 1.0:
        raise _Usage(f"--threshold must be a probability in [0, 1], got {args.threshold!r}")
    config = _config(args)
    ref, ref_types, _ = _load_side(args.ref, args, config)
    # Data on the CUR side: keep a redacted sample of its rows as the alerts' evidence, as a
    # monitor does per window (the config's evidence: section; default 1% of rows, at most 100).
    # A CUR profile file brings the sample `fastdrift profile --evidence` saved in it.
    cur, cur_types, evidence = _load_side(args.cur, args, config, reference=ref,
                                          evidence=_evidence_sample(config, list(ref.columns)))
    check_profiles(ref.columns, cur, args.cur)
    # Types within a kind and new columns, when both sides know their schema (data, or profile
    # files that saved it); skipped reference columns are known, not new.
    changes = [] if cur_types is None else schema_changes(ref_types or {}, cur_types, ref.columns, ref.skipped)
    from .sketches.profile import skip_reasons
    return compare(ref, cur, config, rules=args.rules, schema_changes=changes, evidence=evidence,
                   ref_label=args.ref, cur_label=args.cur, skipped=skip_reasons(ref_types or {}, ref.skipped),
                   threshold=args.threshold)


def _cmd_compare(args) -> int:
    from .report import format_text, render, to_json
    c = _compare(args)
    if args.format == "json":
        text = json.dumps(to_json(c), indent=2)
    elif args.format == "html":
        text = render(c)
    else:
        text = format_text(c)
    if args.output:
        _write(args.output, text.encode("utf-8"))
        print(f"wrote {args.output} (exit status {c.exit_status})", file=sys.stderr)
    else:
        print(text)
    return c.exit_status


def _cmd_demo(args) -> int:
    import pyarrow.parquet as pq
    from .demo import CONCEPT_SEGMENT, LABEL, demo_config, make_labelled_tables
    from .report import compare, format_text, render
    from .report.compare import performance_text, top_alerts
    from .sketches import Profile

    t0 = time.perf_counter()
    tables = make_labelled_tables(args.rows, args.seed)
    ref_table = tables[0]
    config = dataclasses.replace(demo_config(), label=LABEL)  # the model's performance beside the drift
    with tempfile.TemporaryDirectory(prefix="fastdrift-demo-") as tmp:
        paths = []
        for name, t in zip(("reference", "current", "concept"), tables):
            p = os.path.join(tmp, f"{name}.parquet")
            pq.write_table(t, p, row_group_size=max(args.rows // 8, 1))
            paths.append(p)
        t1 = time.perf_counter()
        ref, _ = _profile_paths([paths[0]], args, config)
        sample = config.evidence_sample(ref.columns)  # as compare samples CUR
        cur, _ = _profile_paths([paths[1]], args, config, reference=ref, evidence=sample)
        t2 = time.perf_counter()
        concept, _ = _profile_paths([paths[2]], args, config, reference=ref)
    # The profiles travel as bytes between processes; prove the round trip on the way.
    ref, cur = Profile.from_bytes(ref.to_bytes()), Profile.from_bytes(cur.to_bytes())
    c = compare(ref, cur, config, evidence=sample.rows, ref_label="synthetic reference day",
                cur_label="synthetic drifted day")
    cells = (ref_table.num_rows + tables[1].num_rows) * ref_table.num_columns
    print(f"fastdrift demo: reference {ref.rows:,} rows, current {cur.rows:,} rows, "
          f"{ref_table.num_columns} columns (synthetic data in {t1 - t0:.2f}s; profiled {cells:,} cells from "
          f"Parquet in {t2 - t1:.2f}s = {cells / max(t2 - t1, 1e-9) / 1e6:.0f}M cells/s, reference with exact "
          f"deciles)")
    print()
    print(format_text(c))
    drifted = c.drifted
    print()
    print(f"{len(drifted)} of {len(c.rows)} columns drifted (PSI >= 0.1 on reference bins) or alerting: "
          f"{', '.join(drifted) if drifted else 'none'}")
    _write(args.html, render(c, title="fastdrift demo: drift report").encode("utf-8"))
    print(f"wrote {args.html}; `fastdrift compare` would exit {c.exit_status} "
          f"({ {0: 'nothing fired', 1: 'warning', 2: 'critical'}[c.exit_status]})")
    # The concept-drift day: the same features and scores as the reference, one segment's labels
    # flipped.  The drift rules see nothing; the performance does.
    k = compare(ref, concept, config, ref_label="synthetic reference day",
                cur_label=f"synthetic concept-drift day ({'='.join(CONCEPT_SEGMENT)} labels flipped)")
    auc = k.performance.reference.realized["roc_auc"], k.performance.current.realized["roc_auc"]
    print()
    print(f"Concept drift: a day drawn like the reference, with the labels of {'='.join(CONCEPT_SEGMENT)} "
          f"flipped ({concept.rows:,} rows)")
    print(f"{len(k.drifted)} of {len(k.rows)} columns drifted: "
          f"{', '.join(k.drifted) if k.drifted else 'none'}; alert rules firing: "
          f"{', '.join(a.rule for a in top_alerts(k.alerts)) or 'none'}")
    print("\n".join(performance_text(k.performance)[1:]))
    est = k.performance.reference.estimated.get("f1"), k.performance.current.estimated.get("f1")
    print(f"ROC AUC {auc[0]:.3f} -> {auc[1]:.3f} ({auc[1] - auc[0]:+.3f}): {k.report.concept or 'performance loss'}; "
          f"the estimate from scores alone (F1 {est[0]:.3f} -> {est[1]:.3f}) cannot see it: only labels can")
    _demo_monitor(ref, tables[2], config)
    _demo_canary(args.rows // 8, args.seed)
    html = _beside(args.html, "-concept-drift")
    _write(html, render(k, title="fastdrift demo: concept drift").encode("utf-8"))
    print(f"wrote {html}; `fastdrift compare` would exit {k.exit_status}")
    return 0


def _demo_monitor(ref: Profile, table, config) -> None:
    """The concept-drift day through a live monitor (the reference profile with its labels, default
    rules, four windows): the performance rule fires on its windows, the drift rules do not."""
    from .demo import LABEL
    from .monitor import Monitor, WindowSpec
    cfg = dataclasses.replace(config, window=WindowSpec(by="rows", size=max(table.num_rows // 4, 1)),
                              background_flush=False)
    m = Monitor(ref, config=cfg)
    try:
        for b in table.to_batches(max_chunksize=max(table.num_rows // 16, 1)):
            m.update(b)
        reports = [r for r in m.reports() if r.closed]
        firing = sorted({f"{a.rule} ({a.severity})" for a in m.alerts() if a.state == "firing"})
    finally:
        m.close()
    print()
    print(f"Monitor over the concept-drift day ({len(reports)} windows of {cfg.window.size:g} rows, default rules "
          f"with the label column {LABEL!r}):")
    for r in reports:
        print(f"  window [{r.window_start:g}, {r.window_end:g}): ROC AUC {r.performance.get('roc_auc', math.nan):.3f} "
              f"(reference {r.performance_ref.get('roc_auc', math.nan):.3f}), label coverage "
              f"{r.label_coverage if r.label_coverage is not None else math.nan:.0%}: {r.concept or 'not known yet'}")
    print(f"  alert rules firing: {', '.join(firing) if firing else 'none'}")


#: Exit statuses of a canary verdict, for commands that evaluate ``signal: canary`` rules
#: (docs/cli.md "Exit status"): rollback, and hold (promote exits 0).
EXIT_ROLLBACK, EXIT_HOLD = 10, 11


def _canary_status(reports, status: int) -> int:
    """``status`` (0/1/2 of the alerts) with the canary verdicts of the latest window that has them:
    any rollback -> :data:`EXIT_ROLLBACK`; else the alerts' status when non-zero; else any hold ->
    :data:`EXIT_HOLD`; else (every canary promoted, or no canary rule) ``status``."""
    latest = next((r.comparisons for r in reversed(reports) if r.comparisons), None)
    if not latest:
        return status
    verdicts = {c.verdict for c in latest.values()}
    if "rollback" in verdicts:
        return EXIT_ROLLBACK
    if status:
        return status
    return EXIT_HOLD if "hold" in verdicts else status


def _demo_canary(rows: int, seed: int) -> None:
    """A canary rollout through a live monitor segmented by ``arm``: the canary rule rolls the slower,
    less profitable model version back, and the demo's rollback callback (an ActionSink, not a dry
    run) prints what it would do, once."""
    from .alerts import ActionSink
    from .demo import CANARY_SHARE, CANARY_WINDOW, make_canary_tables
    from .monitor import Monitor
    ref, traffic = make_canary_tables(max(rows, 8_000), seed)

    def rollback(alert) -> None:
        print(f"  [rollback callback] would roll back model version arm=canary now: {alert.summary}")

    sink = ActionSink(rollback=rollback, min_interval=0, name="fastdrift demo")
    rule = {"name": "canary", "owner": "ml-platform", "runbook": "docs/alerts.md#canary-rules", "signal": "canary",
            "baseline": "arm=stable", "candidate": "arm=canary", "min_rows": 300, "action": "rollback"}
    m = Monitor(ref, features=["income", "session_length", "age"], prediction="score", latency="latency_ms",
                kpis=["revenue"], event_time="ts", window={"by": "time", "size": CANARY_WINDOW},
                segment_by=["arm"], rules=[rule], sinks=[sink])
    print()
    print(f"Canary rollout: a new model version on {CANARY_SHARE:.0%} of {traffic.num_rows:,} requests (arm=canary), "
          f"slower and earning 15% less revenue per request; canary rule {rule['baseline']} vs {rule['candidate']}:")
    try:
        for b in traffic.to_batches(max_chunksize=max(traffic.num_rows // 16, 1)):
            m.update(b)
            sink.flush()  # the callback's line prints beside the window that decided it
        m.close()
        sink.flush()
        for r in m.reports():
            c = r.comparisons.get("canary")
            if c is None or not r.rows:
                continue
            kpi = c.kpis.get("revenue", {})
            print(f"  window [{r.window_start:g}, {r.window_end:g}): {c.rows_b:,} canary / {c.rows_a:,} stable rows, "
                  f"p99 {c.latency.get('b_p99', math.nan):.0f} vs {c.latency.get('a_p99', math.nan):.0f} ms, "
                  f"revenue {kpi.get('relative', math.nan):+.1%} (p={kpi.get('pvalue', math.nan):.2g}): {c.verdict}")
        done = [a for a in sink.records() if a.action == "rollback"]
        print(f"  rollback decided {len(done)} time(s): {', '.join(f'{a.outcome} by {a.actor}' for a in done) or 'never'}")
    finally:
        sink.close()


def _beside(path: str, suffix: str) -> str:
    """``report.html`` -> ``report<suffix>.html``."""
    stem, ext = os.path.splitext(path)
    return f"{stem}{suffix}{ext or '.html'}"


def baseline_bench_files(root: str, runs, pytest_args) -> list:
    """The bench files of the checkout that the baseline's benchmarks come from (their names are
    pytest node ids, ``bench/bench_targets.py::test_np_sum``): a baseline of one file's benchmarks
    runs that file alone.  Empty when pytest paths are given or a name names no file here."""
    if any(not a.startswith("-") and os.path.exists(os.path.join(root, a.split("::", 1)[0])) for a in pytest_args):
        return []
    files = {name.split("::", 1)[0] for r in runs for name in r.benchmarks}
    return sorted(files) if all(f.endswith(".py") and os.path.isfile(os.path.join(root, f)) for f in files) else []


#: ``--max-regression`` unless given (``perf compare``, ``bench --baseline``)
DEFAULT_MAX_REGRESSION = "5%"

#: ``fastdrift bench --repeat`` unless given: current runs compared with a baseline, and runs saved
#: by --save-baseline (docs/perf.md)
BENCH_REPEAT, SAVE_REPEAT = 15, 8


def bench_repeat(args) -> int:
    """The runs ``fastdrift bench`` makes: ``--repeat``, else the default of its mode."""
    if args.repeat is not None:
        return args.repeat
    return SAVE_REPEAT if getattr(args, "save_baseline", None) is not None else BENCH_REPEAT


def baseline_verdict(new, saved, force: bool = False, missed=()):
    """``(keep, reason)``: whether runs just made (``new``, a :class:`~fastdrift.perf.compare.SplitNoise`)
    replace a machine's ``saved`` ones (None: none saved).  Kept unless a split of them flags a
    benchmark (a false alarm: the code is the same), a benchmark ``CATCH_SLOWDOWN`` times
    slower would not be flagged against them (``missed``, from
    :func:`~fastdrift.perf.compare.missed_slowdowns`), or they are ``too noisy to tell`` more often
    than the saved ones, which only counts when the saved runs hold every benchmark the new ones
    do (runs that lack a benchmark cannot track it, however quiet); ``force`` keeps them anyway."""
    from .perf.compare import CATCH_SLOWDOWN

    def share(x):
        return x.too_noisy / max(1, x.splits * len(x.per_benchmark))
    if force:
        return True, "--force"
    if new.alarms:
        return False, (f"{new.alarms} of {new.splits} splits of the new runs flag a benchmark regressed "
                       f"(the same code: a false alarm)")
    if missed:
        return False, (f"against the new runs a {CATCH_SLOWDOWN - 1:.0%} slowdown of {', '.join(missed)} "
                       f"would not be flagged (their runs spread too much)")
    added = sorted(set(new.per_benchmark) - set(saved.per_benchmark)) if saved is not None else []
    if added:
        return True, (f"no false alarm; the saved runs lack {len(added)} benchmark(s) the new ones hold "
                      f"({', '.join(added)})")
    if saved is not None and share(new) > share(saved):
        return False, (f"the new runs are too noisy to tell more often than the saved ones "
                       f"({share(new):.0%} of benchmark-splits against {share(saved):.0%})")
    return True, ("no false alarm, and no noisier than the saved runs" if saved is not None
                  else "no false alarm")


def _save_baseline(args, root: str, run: str) -> int:
    """``fastdrift bench --save-baseline DIR``: the benchmarks run ``--repeat`` times (default
    :data:`SAVE_REPEAT`), saved as this machine's runs in ``DIR`` (its subdirectory
    :func:`~fastdrift.perf.machine_dir`) if they are no noisier than the runs saved there."""
    import shutil

    from .perf import environment, machine_dir, parse_threshold, read_runs
    from .perf.compare import CATCH_SLOWDOWN, missed_slowdowns, split_noise
    from .perf.runs import run_files
    repeat = bench_repeat(args)
    if repeat < 4:
        raise _Usage(f"--repeat {repeat}: saving a baseline takes at least 4 runs (its noise is measured "
                     f"on splits of 2 runs against the others)")
    threshold = parse_threshold(args.max_regression)
    target = os.path.join(args.save_baseline, machine_dir(environment()))

    def runs_in(d):
        return run_files(d) if os.path.isdir(d) else []

    if runs_in(args.save_baseline):  # read_baseline would read these and never the machines' directories
        first = read_runs([args.save_baseline])[0]
        raise InvalidInputError(
            f"{args.save_baseline}: holds runs of its own (one machine's baseline); a baseline of several machines "
            f"keeps each machine's runs in a directory of their own: move them into "
            f"{os.path.join(args.save_baseline, machine_dir(first.env))}/ first")
    saved = read_runs([target]) if runs_in(target) else None
    # the bench files the directory's runs (this machine's, else another's) come from
    known = saved
    if known is None and os.path.isdir(args.save_baseline):
        other = [d for d in sorted(os.listdir(args.save_baseline)) if runs_in(os.path.join(args.save_baseline, d))]
        known = read_runs([os.path.join(args.save_baseline, other[0])]) if other else None
    files = baseline_bench_files(root, known, args.pytest_args) if known else []
    with tempfile.TemporaryDirectory(prefix="fastdrift-baseline-") as tmp:
        new_dir = os.path.join(tmp, "runs")
        for i in range(repeat):
            rc = subprocess.call([sys.executable, run, *files, *args.pytest_args, f"--fastdrift-save={new_dir}/",
                                  f"--fastdrift-keep={repeat}"], cwd=root,
                                 env=dict(os.environ, FASTDRIFT_BENCH_JSON=os.path.join(tmp, f"results_{i}.json")))
            if rc != 0:
                return EXIT_ERROR
        new = read_runs([new_dir])
        noise_new = split_noise(new, threshold)
        noise_saved = split_noise(saved, threshold) if saved is not None and len(saved) >= 4 else None
        # a slowdown beyond the margin given (none to find at a margin of 30% or more)
        missed = missed_slowdowns(new, [threshold]) if threshold < CATCH_SLOWDOWN - 1 else []
        keep, why = baseline_verdict(noise_new, noise_saved, args.force, missed)
        print(f"\n{target}: {len(new)} new runs" + (f", {len(saved)} saved" if saved is not None else ", none saved"))
        print(f"  splits of 2 runs against the others, --max-regression {threshold:.0%}:")
        for label, x in (("new", noise_new), ("saved", noise_saved)):
            if x is not None:
                print(f"  {label:<6} false alarms {x.alarms} of {x.splits} splits; too noisy to tell {x.too_noisy} "
                      f"of {x.splits * len(x.per_benchmark)} benchmark-splits")
        if not keep:
            print(f"not saved: {why}; the saved runs are unchanged (--force saves the new ones)")
            return 1
        # the new runs in first (their names are new), then the old ones out: a failure half-way
        # leaves every saved run in place
        fresh = runs_in(new_dir)
        old = [f for f in runs_in(target) if f not in fresh]
        os.makedirs(target, exist_ok=True)
        for f in fresh:
            shutil.copy2(os.path.join(new_dir, f), os.path.join(target, f))
        for f in old:
            os.remove(os.path.join(target, f))
    print(f"saved: {why}")
    return 0


def _cmd_bench(args) -> int:
    root = os.path.abspath(args.path or os.getcwd())
    run = os.path.join(root, "bench", "run.py")
    if not os.path.isfile(run):
        raise InvalidInputError(
            f"{run}: not found; `fastdrift bench` runs the benchmarks of a source checkout "
            "(the installed package does not ship bench/): cd into the checkout or pass --path")
    if args.save_baseline is not None:
        if args.baseline is not None:
            raise _Usage("give --baseline (compare) or --save-baseline (save), not both")
        return _save_baseline(args, root, run)
    if args.force:
        raise _Usage("--force goes with --save-baseline")
    if args.baseline is None:
        rc = subprocess.call([sys.executable, run, *args.pytest_args], cwd=root)
        # 1 and 2 mean alerts elsewhere in this command; a failed benchmark run is an error.
        return 0 if rc == 0 else EXIT_ERROR
    from .perf import compare_runs, environment, parse_threshold, read_baseline, read_run
    # an unreadable baseline, or one without this machine's runs, fails before the benchmarks run
    base = read_baseline(args.baseline, environment())
    files = baseline_bench_files(root, base, args.pytest_args)
    repeat = bench_repeat(args)
    if repeat < 1:
        raise _Usage(f"--repeat {repeat}: at least 1 run")
    threshold = parse_threshold(args.max_regression)
    # probes between the rounds, on the baseline's clock (the wall clock unless it was saved on the CPU's)
    clock = "cpu" if base[0].env.get("timer") == "process_time" else "wall"
    with tempfile.TemporaryDirectory(prefix="fastdrift-bench-") as tmp:
        def runs(tag):
            """``--repeat`` runs of the benchmarks, separate sessions: each draws its own run-to-run change."""
            curs = []
            for i in range(repeat):
                out = os.path.join(tmp, f"{tag}_{i}.json")  # pytest-benchmark JSON: every round's timing
                rc = subprocess.call([sys.executable, run, *files, *args.pytest_args, "--fastdrift-probe", f"--fastdrift-clock={clock}"],
                                     cwd=root, env=dict(os.environ, FASTDRIFT_BENCH_JSON=out))
                if rc != 0:
                    return None
                curs.append(read_run(out))
            return curs

        curs = runs("results")
        if curs is None:
            return EXIT_ERROR
        c = compare_runs(base, curs, threshold)
        _print_bench(c)
        critical = [r.benchmark for r in c.rows if r.severity == "critical"]
        if not (critical and args.confirm):
            return c.exit_status
        # Fresh runs decide the critical benchmarks: a slowdown of the code shows again, a stretch of load
        # from the machine's neighbours seldom lasts through both.  The same sessions as the first runs
        # (a benchmark alone in a session, first to run, is not timed as in the baseline's sessions);
        # the first runs are not pooled in (they were picked for being slow).
        print(f"\nconfirming {len(critical)} critical ({', '.join(critical)}): {repeat} fresh run(s)")
        again = runs("confirm")
        if again is None:
            return EXIT_ERROR
        c2 = compare_runs(base, again, threshold)
        c2.rows = [r for r in c2.rows if r.benchmark in critical]
        c2.problems = [p for p in c2.problems if p["benchmark"] in critical]
        _print_bench(c2)
    confirmed = [r.benchmark for r in c2.rows if r.severity == "critical"]
    lost = [n for n in critical if n not in confirmed]
    if lost:
        print(f"not confirmed (critical in the first runs only; counted as warnings): {', '.join(lost)}")
    warned = any(r.severity == "warning" for r in c.rows)
    return max(1 if warned or lost else 0, c2.exit_status)


def _print_bench(c) -> None:
    from .perf import format_table
    moved = [r for r in c.rows if r.verdict in ("regressed", "improved")]
    print()
    print(format_table(c))
    print(f"moved: {', '.join(f'{r.benchmark} ({r.verdict}, x{r.ratio:.3f})' for r in moved) or 'none'}")


def _cmd_perf_compare(args) -> int:
    from .perf import compare_runs, format_html, format_json, format_table, parse_threshold, read_baseline, read_runs
    files = list(args.runs)
    if args.current is None:
        if len(files) < 2:
            raise _Usage("give BASELINE... CURRENT, or BASELINE... --current CURRENT...")
        current = [files.pop()]
        if os.path.isdir(current[0]):
            raise _Usage(f"{current[0]}: the current run is the last file (a directory is a baseline; "
                         f"name current runs with --current)")
    else:
        current = list(args.current)
    cur = read_runs(current)
    # a baseline directory of several machines' runs: this machine's (the current runs')
    base = [r for f in files for r in read_baseline(f, cur[0].env)]
    c = compare_runs(base, cur, parse_threshold(args.max_regression))
    text = {"table": format_table, "json": format_json, "html": format_html}[args.format](c)
    if args.output:
        _write_text(args.output, text if text.endswith("\n") else text + "\n")
    else:
        print(text)
    return c.exit_status


def _cmd_rules(args) -> int:
    from .exporters.promrules import grafana_dashboard, parse_duration, rules_yaml
    if not (args.prometheus or args.grafana):
        raise _Usage("give --prometheus FILE and/or --grafana FILE")
    parse_duration(args.window)
    if args.prometheus:
        text, notes = rules_yaml(args.rules, args.window)
        _write_text(args.prometheus, text)
        for line in notes:
            print(f"fastdrift rules: {line}", file=sys.stderr)
    if args.grafana:
        _write_text(args.grafana, json.dumps(grafana_dashboard(args.window), indent=2) + "\n")
    return 0


def _cmd_aggregate(args) -> int:
    import time
    from .alerts import JsonLinesSink
    from .fleet import Fleet
    from .records import to_jsonable
    sinks = [JsonLinesSink(args.alerts)] if args.alerts else []
    fleet = Fleet(args.spool, rules=args.rules, sinks=sinks)
    if args.once:
        reports, active = fleet.reports(), fleet.monitor.alerts()
        contrib = fleet.contributors()
        if args.format == "json":
            doc = {"windows": [dict(to_jsonable(r), processes=list(contrib.get((r.window_start, r.window_end), ())))
                               for r in reports],
                   "alerts": [to_jsonable(a) for a in active], "processes": to_jsonable(fleet.processes())}
            print(json.dumps(doc, sort_keys=True, allow_nan=False))
        else:
            for r in reports:
                who = ",".join(contrib.get((r.window_start, r.window_end), ()))
                print(f"[{r.window_start:g}, {r.window_end:g})  rows={r.rows}  processes={who}")
            for a in active:
                print(f"{a.severity} {a.state}: {a.rule} {a.summary}")
        sev = {a.severity for a in active if a.state == "firing"}
        return _canary_status(reports, 2 if "critical" in sev else 1 if "warning" in sev else 0)
    server = None
    if args.serve is not None:
        server, _ = fleet.serve_metrics(port=args.serve, addr=args.addr)
        print(f"fastdrift aggregate: serving http://{args.addr}:{server.server_port}/metrics", file=sys.stderr)
    try:
        while True:  # the scrapes refresh too; this loop sends alert transitions to the sinks
            fleet.refresh()
            time.sleep(args.interval)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def _cmd_skew(args) -> int:
    from .serving_skew import skew
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    budget = None
    if args.memory_budget is not None:
        txt = args.memory_budget.strip().upper().removesuffix("B").removesuffix("I")
        num, unit = (txt[:-1], txt[-1]) if txt[-1:] in units else (txt, "")
        try:
            budget = int(float(num) * units[unit])
        except ValueError:
            raise _Usage(f"--memory-budget expects bytes such as 512M or 2G, got {args.memory_budget!r}") from None
    ev = _config(args).evidence if getattr(args, "config", None) else None
    cols = [c for c in args.columns.split(",") if c] if args.columns else None
    r = skew(args.serving, args.offline, key=args.key, columns=cols, rtol=args.rtol, atol=args.atol,
             max_mismatch_rate=args.max_mismatch_rate, max_unmatched_rate=args.max_unmatched_rate,
             examples=args.examples, drop=ev.drop if ev else (), hash=ev.hash if ev else (),
             salt=ev.salt if ev else "", memory_budget=budget, workers=args.workers)
    text = json.dumps(r.to_json(), indent=2, allow_nan=False) if args.format == "json" else r.table()
    if args.output:
        _write(args.output, text.encode("utf-8"))
        print(f"wrote {args.output} (exit status {r.exit_status})", file=sys.stderr)
    else:
        print(text)
    return r.exit_status


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise InvalidInputError(f"{path}: {exc.strerror or exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastdrift", description="Fast drift monitoring for ML systems.",
                     epilog="exit status: 0 ok / nothing fired, 1 warning, 2 critical, 3 unexpected error, "
                            "4 unusable input, 5 schema mismatch, 6 corrupt profile, 64 usage")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p):
        p.add_argument("--config", help="monitor config (YAML/TOML): columns, kinds, binning, roles")
        p.add_argument("--label", metavar="COL", help="the label column (0/1 or boolean): the model's performance "
                                                      "on the data (with the prediction column); never a feature")
        p.add_argument("--prediction", metavar="COL",
                       help="the prediction column (scores in [0, 1]), as the config's prediction role")
        p.add_argument("--scores", choices=("probability", "margin"), default=None,
                       help="with --label: the prediction column holds probabilities in [0, 1] (default) or "
                            "raw margins (logits); as the config's labels.scores")
        p.add_argument("--workers", type=int, default=None, help="scan threads (default: one more than the cores)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def segments(p):
        p.add_argument("--segment-by", metavar="COL[,COL]",
                       help="one profile per value of these columns (e.g. model_version,country), counted in the same "
                            "pass; compare reports each segment's drift too (default for a current profile: the "
                            "reference's segments)")
        p.add_argument("--max-segments", type=int, default=None,
                       help="segments of their own (default 50); rows of later values count under <other>")

    p = sub.add_parser("profile", help="profile Parquet/Arrow IPC/CSV/JSON-lines files or directories")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (hive partitions too)")
    p.add_argument("-o", "--output", required=True, help=f"profile file to write (conventionally *{PROFILE_SUFFIX})")
    p.add_argument("--reference", help="count on this reference profile's bins (a current profile)")
    p.add_argument("--columns", help="comma-separated columns (default: every column with a sketch)")
    p.add_argument("--kind", action="append", metavar="COLUMN=KIND", help="numeric or categorical")
    p.add_argument("--bins", type=int, default=10, help="reference bins per numeric column (default 10: deciles)")
    p.add_argument("--max-categories", type=int, default=10_000)
    p.add_argument("--no-quantiles", "--no-tdigest", dest="no_tdigest", action="store_true",
                   help="no quantile sketches (t-digests): faster, for drift only; no quantile shifts later")
    p.add_argument("--evidence", action="store_true",
                   help="keep a redacted sample of rows in the file (the config's evidence: section) for the "
                        "alerts of a later compare")
    common(p)
    segments(p)
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("compare", help="drift of CUR against REF; exit 0 nothing fired, 1 warning, 2 critical "
                                      "(the worst of the whole and, with segments, of every segment)")
    p.add_argument("ref", metavar="REF", help="reference: a profile file or data (profiled now)")
    p.add_argument("cur", metavar="CUR", help="current: a profile on REF's bins, or data (profiled on REF's bins)")
    p.add_argument("--rules", help="alert rules file (YAML/TOML); default: built-in default rules")
    p.add_argument("--format", choices=("table", "json", "html"), default="table")
    p.add_argument("-o", "--output", help="write the report here instead of stdout")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="probability from which a row is predicted positive (performance; default 0.5; "
                        "with --scores margin, margins from its logit)")
    common(p)
    segments(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("demo", help="profile built-in synthetic traffic, compare, alert, write an HTML report")
    p.add_argument("--rows", type=int, default=200_000, help="rows per day (default 200000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--html", default="fastdrift-demo.html", help="report file (default fastdrift-demo.html)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="run bench/run.py of a source checkout and print the throughput table",
                       description="Other arguments (e.g. -k histogram) are passed to bench/run.py (pytest).")
    p.add_argument("--path", help="source checkout (default: the current directory)")
    p.add_argument("--baseline", metavar="FILE", help="compare this run with a saved one (any `perf compare` "
                                                      "input, a directory of runs, or a directory of one such "
                                                      "directory per machine: this machine's); exit 0 nothing "
                                                      "regressed, 1 warning, 2 critical")
    p.add_argument("--save-baseline", metavar="DIR",
                   help="run the benchmarks --repeat times (default 8) and save the runs as this machine's in DIR "
                        "(its subdirectory named for the CPU, cores and SIMD path), if no split of them flags a "
                        "benchmark at --max-regression, a 30%% slowdown of every benchmark would be flagged "
                        "against them at that margin (below 30%%), and they are no noisier than the runs saved "
                        "there; exit 0 saved, 1 not saved")
    p.add_argument("--force", action="store_true", help="with --save-baseline: save the new runs whatever their noise")
    p.add_argument("--max-regression", default=DEFAULT_MAX_REGRESSION, help="with --baseline: the slowdown allowed; with "
                                                          "--save-baseline: the one the runs' noise is measured at "
                                                          "(default 5%%)")
    p.add_argument("--repeat", type=int, default=None, metavar="M",
                   help="with --baseline: run the benchmarks M times (separate sessions) and compare the M runs with "
                        "the baseline: the run-to-run change averages out over them (default 15: against a baseline of "
                        "10 runs, the fewest that caught >= 95%% of 10%% slowdowns in every draw of docs/perf.md's "
                        "measurements); with --save-baseline: the runs saved (default 8, at least 4)")
    p.add_argument("--confirm", action="store_true",
                   help="with --baseline: when a benchmark regresses critically, run the benchmarks --repeat times "
                        "again and let those fresh runs decide the critical ones (exit 2 only if they regress "
                        "critically again; critical in the first runs only is a warning)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("perf", help="benchmark regression gates (perf compare BASELINE... CURRENT)")
    perf = p.add_subparsers(dest="perf_command", required=True, parser_class=_Parser)
    p = perf.add_parser("compare", help="did each benchmark get slower than its baseline, beyond noise? "
                                        "exit 0 nothing regressed, 1 warning, 2 critical")
    p.add_argument("runs", nargs="+", metavar="BASELINE... CURRENT",
                   help="the baseline run(s), then the current run: pytest-benchmark JSON, fastdrift run file "
                        "(--fastdrift-save), or Parquet/CSV of benchmark, value[, unit]; a directory stands for "
                        "the runs in it (a baseline directory of one directory of runs per machine: those of the "
                        "current runs' machine). Several baseline runs measure the run-to-run variance")
    p.add_argument("--current", metavar="FILE", nargs="+",
                   help="the current run, or several runs of the code under test (files or a directory: the run-to-run "
                        "change averages out over them); every positional file is then a baseline run")
    p.add_argument("--max-regression", default=DEFAULT_MAX_REGRESSION, help="the slowdown allowed (default 5%%)")
    p.add_argument("--format", choices=("table", "json", "html"), default="table")
    p.add_argument("-o", "--output", help="write the report here instead of stdout")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_perf_compare)

    p = sub.add_parser("rules", help="write Prometheus recording/alerting rules and a Grafana dashboard "
                                     "over the exported counters (fleet PSI, latency quantiles, errors)")
    p.add_argument("--prometheus", metavar="FILE", help="Prometheus rules file (YAML) to write")
    p.add_argument("--grafana", metavar="FILE", help="Grafana dashboard (JSON) to write")
    p.add_argument("--rules", help="fastdrift alert rules file (YAML/TOML); default: built-in default rules")
    p.add_argument("--window", default="5m", help="window of the recording rules (default 5m)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_rules)

    p = sub.add_parser("aggregate", help="merge the panes every process published to SPOOL into fleet windows; "
                                         "evaluate the rules once for the fleet; serve or print them")
    p.add_argument("spool", metavar="SPOOL", help="the spool directory or pyarrow.fs URI (Monitor(spool=...))")
    p.add_argument("--rules", help="alert rules file (YAML/TOML); default: built-in default rules")
    p.add_argument("--once", action="store_true", help="print the merged windows and alerts and exit "
                                                       "(exit 0 nothing firing, 1 warning, 2 critical)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="with --once")
    p.add_argument("--serve", type=int, metavar="PORT", help="serve the merged view on /metrics (0: a free port)")
    p.add_argument("--addr", default="127.0.0.1", help="address to serve on (default loopback)")
    p.add_argument("--alerts", metavar="FILE", help="append alert transitions as JSON lines")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between re-reads (default 5)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_aggregate)

    p = sub.add_parser("skew", help="training-serving skew: join serving features with offline features on a key; "
                                    "exit 0 ok, 2 skew beyond the thresholds")
    p.add_argument("serving", metavar="SERVING", help="features logged at serving (file or directory)")
    p.add_argument("offline", metavar="OFFLINE", help="offline features of the same keys (file or directory)")
    p.add_argument("--key", required=True, help="the join column, e.g. request_id")
    p.add_argument("--columns", help="comma-separated features (default: every column on both sides)")
    p.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance of numeric features (default 1e-5)")
    p.add_argument("--atol", type=float, default=1e-8, help="absolute tolerance of numeric features (default 1e-8)")
    p.add_argument("--max-mismatch-rate", type=float, default=0.0,
                   help="fail (exit 2) when a feature's mismatch rate exceeds this (default 0: any mismatch)")
    p.add_argument("--max-unmatched-rate", type=float, default=1.0,
                   help="fail (exit 2) when this share of a side's keys is missing from the other (default 1: never)")
    p.add_argument("--examples", type=int, default=10, help="worst examples per feature (default 10)")
    p.add_argument("--memory-budget", metavar="BYTES",
                   help="e.g. 512M, 4G (default: a quarter of physical memory); larger inputs spill to disk")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("-o", "--output", help="write the report here instead of stdout")
    p.add_argument("--config", help="monitor config (YAML/TOML): its evidence: drop/hash/salt redact the examples")
    p.add_argument("--workers", type=int, default=None, help="threads (default: one more than the cores)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_skew)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    parser = _parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else list(argv))
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "bench":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.pytest_args = extra  # `fastdrift bench -k histogram`: pytest's arguments
    except _Usage as exc:
        print(f"{exc} (see fastdrift --help)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"fastdrift {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line unless --debug
        if debug or getattr(args, "debug", False):
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        code = _exit_code(exc)
        if code == EXIT_ERROR:
            msg = f"{type(exc).__name__}: {msg} (unexpected; rerun with --debug for the traceback)"
        print(f"fastdrift {args.command}: error: {msg}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
