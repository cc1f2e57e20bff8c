"""A spool: where the processes of a fleet publish their pane state, and where it is read back.

Layout under the spool root (a local directory or any ``pyarrow.fs`` URI)::

    reference.fdspool              SPOOL_REFERENCE envelope: params = JSON {"config": ...},
                                   payload = the monitor reference (written once, by the first
                                   publisher; every later publisher checks it is identical)
    panes/<process>.<pane>.fdpane  SPOOL_PANE envelope: params = JSON header, payload = the
                                   pane's WindowSketch bytes

A pane file's header: ``{"process", "pane", "closed", "max_ts", "published", "pending":
[dropped_late, rejected, shed]}``.  ``pending`` of a closed pane are the counts its window carried
when it closed (late drops, rejected rows and shed requests are attributed to the next window
emitted); of an open pane, the process's counts not yet in a closed window.  ``max_ts`` is the
process's newest event time when the file was written (the fleet's watermark is the newest of
them).  A file is written only when its pane changed (an open pane each flush it got rows or
labels, a closed pane once, and again at the next flush after late labels joined it: same header,
the sketch's labels revised), atomically: a temporary file renamed over the name on a local disk,
one put of the whole object on an object store.  The process and pane in the name keep concurrent
writers apart; each process deletes its own closed panes ``retention`` panes behind its newest
closed one.
"""
from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
import time
import weakref
from typing import Dict, Iterator, List, Optional, Tuple

from .. import codec
from ..errors import CorruptStateError, FastDriftError, IncompatibleSketchError, InvalidInputError
from .config import MonitorConfig, config_from_dict, config_to_dict
from .ingest import check_stored_config, state_difference
from .labels import LabelPane
from .signals import Reference, WindowSketch

__all__ = ["Store", "SpoolWriter", "read_reference", "read_panes", "PaneFile", "REFERENCE", "PANES"]

REFERENCE = "reference.fdspool"
PANES = "panes"
_log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Store:
    """A directory of small files: a local path (plain ``os`` calls) or a ``pyarrow.fs`` URI."""

    def __init__(self, where):
        s = os.fspath(where)
        self.where = s
        if "://" in s:
            import pyarrow.fs as pafs
            try:
                self.fs, root = pafs.FileSystem.from_uri(s)
            except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for bad URIs
                raise InvalidInputError(f"spool {s!r}: {exc}") from None
            self.root = root.rstrip("/")
            self.fs.create_dir(f"{self.root}/{PANES}", recursive=True)
        else:
            self.fs, self.root = None, os.path.abspath(s)
            try:
                os.makedirs(os.path.join(self.root, PANES), exist_ok=True)
            except OSError as exc:
                raise InvalidInputError(f"spool {s!r}: {exc.strerror or exc}") from None

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def put(self, rel: str, data: bytes) -> None:
        """Write ``rel`` atomically (readers see the old or the new content, never a torn file)."""
        path = self._path(rel)
        if self.fs is not None:
            with self.fs.open_output_stream(path) as fh:  # one put: object stores publish it whole
                fh.write(data)
            return
        tmp = f"{os.path.dirname(path)}/.tmp-{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def put_new(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` with ``data`` unless it exists; True if this call created it."""
        path = self._path(rel)
        if self.fs is not None:
            if self.get(rel) is not None:
                return False
            self.put(rel, data)
            return True
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, path)  # atomic create-if-absent: two first publishers cannot both win
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def get(self, rel: str) -> Optional[bytes]:
        path = self._path(rel)
        try:
            if self.fs is not None:
                with self.fs.open_input_stream(path) as fh:
                    return fh.read()
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def names(self, sub: str) -> List[str]:
        if self.fs is not None:
            import pyarrow.fs as pafs
            infos = self.fs.get_file_info(pafs.FileSelector(self._path(sub), allow_not_found=True))
            return [i.base_name for i in infos if i.type == pafs.FileType.File]
        try:
            return os.listdir(self._path(sub))
        except FileNotFoundError:
            return []

    def delete(self, rel: str) -> None:
        try:
            if self.fs is not None:
                self.fs.delete_file(self._path(rel))
            else:
                os.unlink(self._path(rel))
        except FileNotFoundError:
            pass


# -- the reference file ------------------------------------------------------------------------------

def _reference_bytes(ref: Reference, config: MonitorConfig) -> bytes:
    d = config_to_dict(config)
    d["rules"] = None  # rules are the aggregator's, not state
    return codec.encode(codec.Kind.SPOOL_REFERENCE, codec.Writer().json({"config": d}).getvalue(), ref.to_bytes())


def read_reference(store: Store) -> Tuple[Reference, MonitorConfig]:
    """The reference and config every publisher of ``store`` counts on."""
    data = store.get(REFERENCE)
    if data is None:
        raise InvalidInputError(f"spool {store.where!r}: no {REFERENCE} (no monitor has published there yet)")
    _, params, payload = codec.decode(data, expected_kind=codec.Kind.SPOOL_REFERENCE)
    r = codec.Reader(params, "spool reference parameters")
    meta = r.json()
    r.done()
    try:
        config = config_from_dict(meta["config"])
    except (KeyError, TypeError, InvalidInputError) as exc:
        raise CorruptStateError(f"spool reference: invalid config ({exc})") from None
    pr = codec.Reader(payload, "spool reference")
    ref = Reference.from_reader(pr)
    pr.done()
    check_stored_config(ref, config, "spool reference")
    return ref, config


# -- pane files --------------------------------------------------------------------------------------

class PaneFile:
    """One published pane: header fields and the sketch bytes (decoded on demand)."""

    __slots__ = ("process", "pane", "closed", "max_ts", "published", "pending", "sketch_bytes", "name")

    def __init__(self, header: dict, sketch_bytes: bytes):
        try:
            pane = header["pane"]
            if type(pane) is not int:
                raise TypeError(f"pane {pane!r}")
            self.process, self.pane = str(header["process"]), pane
            mt = header["max_ts"]
            self.closed, self.max_ts = bool(header["closed"]), -math.inf if mt is None else float(mt)
            self.published = float(header["published"])
            pending = header["pending"]
            if not (isinstance(pending, list) and len(pending) == 3
                    and all(type(v) is int and v >= 0 for v in pending)):
                raise ValueError(f"pending {pending!r}")
            self.pending = tuple(pending)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CorruptStateError(f"spool pane file: invalid header ({exc})") from None
        self.sketch_bytes = sketch_bytes
        self.name = f"{self.process}.{self.pane}.fdpane"


def read_panes(store: Store, corrupt: Optional[dict] = None) -> Iterator[PaneFile]:
    """Every pane file of ``store`` (a file removed meanwhile is skipped).  A corrupt one raises, or,
    given a ``corrupt`` dict, is skipped and recorded there (file name -> the error): one damaged
    file must not hide every other process's counts."""
    for name in sorted(store.names(PANES)):
        if not name.endswith(".fdpane"):
            continue
        data = store.get(f"{PANES}/{name}")
        if data is None:
            continue  # retired between listing and reading
        try:
            _, params, payload = codec.decode(data, expected_kind=codec.Kind.SPOOL_PANE)
            r = codec.Reader(params, f"spool pane {name}")
            header = r.json()
            r.done()
            if not isinstance(header, dict):
                raise CorruptStateError(f"spool pane file {name}: header is not a JSON object")
            f = PaneFile(header, payload)
        except CorruptStateError as exc:
            if corrupt is None:
                raise
            corrupt[name] = str(exc)
            continue
        f.name = name
        yield f


class SpoolWriter:
    """Publishes one process's panes (see the module docstring).

    Parameters
    ----------
    where : local directory or ``pyarrow.fs`` URI
    process_id : name of this process in the fleet; None = ``<hostname>-<pid>`` (re-read after a
        fork, so pre-forked workers never share a name)
    ref, config : the monitor's; the spool's reference file must hold the same (else
        ``IncompatibleSketchError`` naming the difference)
    retention : closed panes kept per process behind its newest closed one
    """

    def __init__(self, where, process_id: Optional[str], ref: Reference, config: MonitorConfig,
                 retention: int = 64):
        if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
            raise InvalidInputError(f"spool retention must be a positive number of panes, got {retention!r}")
        if config.window.by != "time":
            raise InvalidInputError("a spool needs event-time windows (window={'by': 'time', ...}): row-count "
                                    "panes of several processes do not line up")
        self.store = Store(where)
        self.retention = retention
        self.ref, self.config = ref, config
        self._fixed_id = None if process_id is None else _UNSAFE.sub("_", str(process_id))
        mine = _reference_bytes(ref, config)
        if not self.store.put_new(REFERENCE, mine):
            theirs = self.store.get(REFERENCE)
            if theirs != mine:
                other_ref, other_cfg = read_reference(self.store)
                why = state_difference(other_cfg, other_ref, config, ref)
                if why:  # buffering and rules may differ between publishers; state may not
                    raise IncompatibleSketchError(f"spool {self.store.where!r} holds another monitor's state: {why}")
        self.lock = threading.Lock()
        self._reset()
        self._reset_publisher()

    def _reset(self) -> None:
        """This process's publishing state (a forked child starts its own, counters at 0)."""
        self.errors = 0  # failed writes (the first of an outage logged; the next flush writes the pane again)
        self.coalesced = 0  # queued versions replaced by a newer one before the store took them
        self.written_at = math.nan  # Unix time of the last pane file the store took
        self._pid = os.getpid()
        self._sent: Dict[int, int] = {}  # open pane -> rows when last written
        self._closed_written: List[int] = []
        self.labels_changed: set = set()  # panes whose labels joined since the last collect (ingest's)

    @property
    def process_id(self) -> str:
        return self._fixed_id or _UNSAFE.sub("_", f"{socket.gethostname()}-{os.getpid()}")

    def collect(self, windower, labels=None) -> List[Tuple[int, bool, object]]:
        """Encode the panes changed since the last call (hold the ingest state lock).  A closed pane
        published before and whose labels changed since (``labels``: the monitor's join store) is
        queued as a revision: ``(pid, True, _Revision(label pane bytes))``, applied to the pane's
        file by the publisher."""
        if os.getpid() != self._pid:  # a forked child: its own name and panes
            self.after_fork()
            windower.closed_log = []
        proc, now, max_ts = self.process_id, time.time(), windower.max_ts
        out = []
        closed, windower.closed_log = windower.closed_log, []
        changed, self.labels_changed = self.labels_changed, set()
        for pid, ws, dropped, rejected, shed in closed:
            changed.discard(pid)  # written whole, with its labels
            was_sent = self._sent.pop(pid, None) is not None
            if ws.rows or dropped or rejected or shed or was_sent:
                out.append((pid, True, self._encode(proc, pid, True, max_ts, now, (dropped, rejected, shed), ws)))
        pending = (windower.pending_dropped, windower.pending_rejected, windower.pending_shed)
        for pid, ws in windower.open.items():
            if self._sent.get(pid) != ws.rows or pid in changed:
                self._sent[pid] = ws.rows
                out.append((pid, False, self._encode(proc, pid, False, max_ts, now, pending, ws)))
            changed.discard(pid)
        for pid in sorted(changed):
            lb = labels.kept_bytes(pid) if labels is not None else None
            if lb is not None:
                out.append((pid, True, _Revision(lb)))
        return out

    def _revise(self, data: bytes, rev: "_Revision") -> bytes:
        """A pane file's bytes with the sketch's labels replaced by ``rev``'s (header unchanged: the
        fleet reads its newest ``published`` open pane for the pending counts)."""
        _, params, payload = codec.decode(data, expected_kind=codec.Kind.SPOOL_PANE)
        ws = WindowSketch.from_bytes(payload, self.ref, self.config)
        ws.labels = LabelPane.from_bytes(rev.labels, self.config)
        return codec.encode(codec.Kind.SPOOL_PANE, params, ws.to_bytes())

    @staticmethod
    def _encode(proc, pid, closed, max_ts, now, pending, ws) -> bytes:
        header = {"process": proc, "pane": pid, "closed": closed, "max_ts": max_ts if max_ts > -math.inf else None,
                  "published": now, "pending": list(pending)}
        return codec.encode(codec.Kind.SPOOL_PANE, codec.Writer().json(header).getvalue(), ws.to_bytes())

    # -- the publisher thread -------------------------------------------------------------------------
    def _reset_publisher(self) -> None:
        self._cond = threading.Condition()
        self._pending: Dict[str, Tuple[int, bool, bytes]] = {}  # file name -> newest version to write
        self._submitted = self._written = 0  # submit calls / the last one a finished pass covered
        self._thread: Optional[threading.Thread] = None
        self._failing = False

    def after_fork(self) -> None:
        """In a forked child: no publisher thread and nothing queued (the parent writes its panes)."""
        self.lock = threading.Lock()
        self._reset()
        self._reset_publisher()

    def submit(self, items: List[Tuple[int, bool, bytes]]) -> int:
        """Queue what :meth:`collect` encoded for the publisher thread; returns a ticket for
        :meth:`wait`.  A newer version of a queued file replaces it (counted in ``coalesced``): a
        slow store gets the newest state of each pane, never a growing backlog.  Closed panes are
        only ever replaced by themselves, and the queue is bounded by the panes the process keeps
        (a closed pane ``retention`` panes behind the newest is retired unwritten)."""
        proc = self.process_id
        with self._cond:
            for pid, closed, data in items:
                name = f"{proc}.{pid}.fdpane"
                old = self._pending.pop(name, None)
                if old is not None:
                    self.coalesced += 1
                    if isinstance(data, _Revision) and not isinstance(old[2], _Revision):
                        data = self._revise(old[2], data)  # the whole pane is still queued: revise it
                self._pending[name] = (pid, closed, data)
            closed_q = [n for n, (p, c, _) in self._pending.items() if c]
            if len(closed_q) > self.retention + 1:
                newest = max(self._pending[n][0] for n in closed_q)
                for n in closed_q:
                    if self._pending[n][0] <= newest - self.retention:
                        del self._pending[n]
            self._submitted += 1
            ticket = self._submitted
            self._cond.notify_all()
        self._start()
        return ticket

    def wait(self, ticket: int, timeout: Optional[float]) -> bool:
        """Wait until a publisher pass has covered everything submitted up to ``ticket`` (failed
        writes stay queued for the next pass); False on timeout."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._written >= ticket or self._thread is None, timeout)
        if self._thread is None:  # no thread could start (interpreter exit): write here
            self._pass()
            return True
        return ok

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            t = threading.Thread(target=_publish_loop, args=(weakref.ref(self), self._cond),
                                 name="fastdrift-spool-publish", daemon=True)
            try:
                t.start()
            except RuntimeError:  # interpreter shutting down: wait() writes on the calling thread
                self._thread = None
                return
            self._thread = t

    def _pass(self) -> bool:
        """Write everything queued (publisher thread); False if there was nothing new to do."""
        with self._cond:
            if self._written >= self._submitted and (self._thread is not None or not self._pending):
                return False
            todo, self._pending, ticket = self._pending, {}, self._submitted
        self.write(todo)
        with self._cond:
            self._written = max(self._written, ticket)
            self._cond.notify_all()
        return True

    def write(self, todo: Dict[str, Tuple[int, bool, bytes]]) -> None:
        """Write queued files, then retire this process's old closed panes.  A failed write is queued
        again unless a newer version is (retried at the next submit); the first failure of an
        outage is logged."""
        proc = self.process_id
        for name, (pid, closed, data) in todo.items():
            revision = isinstance(data, _Revision)
            try:
                if revision:
                    old = self.store.get(f"{PANES}/{name}")
                    if old is None:  # retired (or never written): nothing to revise
                        continue
                    try:
                        data = self._revise(old, data)
                    except FastDriftError as exc:  # a damaged file is not retried forever
                        self.errors += 1
                        _log.warning("fastdrift: pane %s in spool %r not revised: %s", pid, self.store.where, exc)
                        continue
                self.store.put(f"{PANES}/{name}", data)
            except Exception as exc:  # noqa: BLE001 - any failed put: counted, retried; the thread lives on
                self.errors += 1
                if not self._failing:
                    _log.warning("fastdrift: publishing pane %s to spool %r failed (retried at the next flush; "
                                 "later failures are counted, not logged): %s", pid, self.store.where, exc)
                self._failing = True
                with self._cond:
                    cur = self._pending.get(name)
                    if cur is None:
                        self._pending[name] = (pid, closed, data)
                    elif isinstance(cur[2], _Revision) and not isinstance(data, _Revision):
                        self._pending[name] = (pid, closed, self._revise(data, cur[2]))
                continue
            self._failing = False
            self.written_at = time.time()
            if closed and not revision:
                self._closed_written.append(pid)
        if self._closed_written:
            newest = max(self._closed_written)
            old = [p for p in self._closed_written if p <= newest - self.retention]
            for p in old:
                self.store.delete(f"{PANES}/{proc}.{p}.fdpane")
            if old:
                self._closed_written = [p for p in self._closed_written if p > newest - self.retention]


class _Revision:
    """A queued revision of a published closed pane: its labels' ``LabelPane`` bytes."""

    __slots__ = ("labels",)

    def __init__(self, labels: bytes):
        self.labels = labels


def _publish_loop(ref: "weakref.ref", cond: threading.Condition) -> None:
    """The publisher thread: writes what is queued, then sleeps until the next submit.  It holds
    its writer only while writing, so a monitor nobody references can be collected."""
    while True:
        w = ref()
        if w is None or w._cond is not cond:  # collected, or reset after a fork
            return
        try:
            if w._pass():
                continue
        finally:
            del w
        with cond:
            w = ref()
            if w is None:
                return
            if w._written >= w._submitted:
                del w
                cond.wait(5.0)
