"""The verbs every sketch shares: update, merge, copy, count, to_bytes/from_bytes.

A sketch is mergeable state.  ``update`` folds a batch of values in,
``merge`` folds another sketch of the same parameters in (in place; the other
is never modified), and the byte form travels between processes through the
one versioned, checksummed format of :mod:`fastdrift.codec`.

Thread safety: a sketch is not meant to be mutated from two threads at once
(give each thread its own sketch and merge, or guard it, as the monitor does).
Doing it anyway raises :class:`~fastdrift.errors.ConcurrentUseError` instead
of silently corrupting counts: mutations take a non-blocking lock.  Reading a
sketch that another thread is writing is allowed: ``to_bytes``, ``copy``,
``==``, being the ``other`` of a ``merge`` (and the t-digest's queries) hold
the sketch's state lock, which a mutation holds for a whole call, so a reader
waits for the batch in progress and sees the state between two calls; it never
makes the writer fail.  A ``merge`` takes the two state locks in one global
order, so merges in opposite directions cannot deadlock.


Counts are capped: a sketch holds at most :data:`MAX_COUNT` (2**62) values (a t-digest
2**53, the largest integer its float64 weights hold exactly).  ``update`` and ``merge``
that would pass the cap raise :class:`~fastdrift.errors.CountOverflowError` before
counting anything, and decoders reject state above it, so no int64 counter (in Python
or in the C kernels, which add at most a batch's length to counts below the cap) can
wrap.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import ClassVar, Optional

import numpy as np
import pyarrow as pa

from ..adapters.arrow import is_numeric_type
from ..errors import (ConcurrentUseError, CorruptStateError, CountOverflowError, IncompatibleSketchError,
                      InvalidInputError, SchemaError)
from .. import codec

__all__ = ["Sketch", "check_numeric_type", "MAX_COUNT", "count_total", "mutating_all"]

#: The most values a sketch holds: the sum of two capped counts still fits an int64.
MAX_COUNT = 1 << 62


def count_total(counts, what: str, cap: int = MAX_COUNT) -> int:
    """The exact sum of decoded ``counts`` (int64 array), or CorruptStateError naming ``what``
    when one is negative or the sum is above ``cap``."""
    c = np.asarray(counts, dtype=np.int64)
    if not c.size:
        return 0
    if c.min() < 0:
        raise CorruptStateError(f"{what} has negative counts")
    # each count is below 2**63, so a float sum at most 2**63 means the exact sum fits a uint64
    if c.max() > cap or float(c.sum(dtype=np.float64)) > 2.0 * cap:
        raise CorruptStateError(f"{what}: counts add up to more than {cap}, the most a sketch holds")
    total = int(c.view(np.uint64).sum())
    if total > cap:
        raise CorruptStateError(f"{what}: counts add up to {total}, above {cap}, the most a sketch holds")
    return total


def check_numeric_type(arr: pa.Array, name: Optional[str]) -> None:
    """Raise :class:`~fastdrift.errors.SchemaError` unless ``arr`` holds numbers or nulls
    (what the numeric sketches count, :func:`~fastdrift.adapters.arrow.is_numeric_type`;
    dictionaries are categories)."""
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):
        t = t.storage_type
    if not (is_numeric_type(t) or pa.types.is_null(t)):
        label = f"column {name!r}" if name is not None else "values"
        raise SchemaError(f"{label}: numeric sketches count numbers, got Arrow type {t}")


class _Mutating:
    """:meth:`Sketch._mutating` of one sketch: its writer lock (or ConcurrentUseError) and then its
    state lock.  Every update takes it: a plain context manager costs about 1 us where the
    generator of ``contextlib.contextmanager`` nested in another cost 6.5 (a monitor's take of
    4,096 requests updates some 44 sketches)."""

    __slots__ = ("sketch",)

    def __init__(self, sketch: "Sketch"):
        self.sketch = sketch

    def __enter__(self) -> None:
        s = self.sketch
        if not s._lock.acquire(blocking=False):
            raise s._busy()
        try:
            s._state_lock.acquire()
        except BaseException:
            s._lock.release()
            raise

    def __exit__(self, *exc) -> bool:
        s = self.sketch
        try:
            s._state_lock.release()
        finally:
            s._lock.release()
        return False


class Sketch:
    """Base class of all sketches; subclasses implement the ``_``-prefixed hooks."""

    KIND: ClassVar[int]
    #: the most values this sketch holds (see the module docstring)
    MAX_COUNT: ClassVar[int] = MAX_COUNT

    def __init__(self, name: Optional[str] = None):
        self.name = name
        self._lock = threading.Lock()  # held by the one writer; a second one fails fast
        self._state_lock = threading.RLock()  # held by a mutation for its whole call, and by readers

    # -- hooks -----------------------------------------------------------
    def _update(self, values) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _merge(self, other) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _params(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _payload(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _decode(cls, params: bytes, payload: bytes):  # pragma: no cover - abstract
        raise NotImplementedError

    def _copy(self):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- verbs -----------------------------------------------------------
    def _mutating(self, *sources: "Sketch"):
        """Hold the writer lock (or raise ConcurrentUseError) and the state locks of this
        sketch and of the ``sources`` it reads, the latter in one global order."""
        return _Mutating(self) if not sources else self._mutating_with(sources)

    @contextmanager
    def _mutating_with(self, sources):
        if not self._lock.acquire(blocking=False):
            raise self._busy()
        try:
            with self._reading(*sources):
                yield
        finally:
            self._lock.release()

    def _busy(self) -> ConcurrentUseError:
        return ConcurrentUseError(
            f"{type(self).__name__}{self._label()} is being mutated by another thread; "
            "guard it with a lock or give each thread its own sketch and merge")


    @contextmanager
    def _reading(self, *others: "Sketch"):
        """Hold the state locks of this sketch and ``others`` (ordered by id): no mutation of
        any of them is in progress meanwhile."""
        if not others:  # one sketch: its own lock
            with self._state_lock:
                yield
            return
        locks = sorted({id(s): s._state_lock for s in (self, *others)}.items())
        for _, lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for _, lock in reversed(locks):
                lock.release()

    def _label(self) -> str:
        return f" of column {self.name!r}" if self.name is not None else ""

    def _room(self, n: int, what: str = "counting") -> None:
        """Raise CountOverflowError unless ``n`` more values keep the count within :attr:`MAX_COUNT`."""
        have = self.count
        if have + n > self.MAX_COUNT:
            raise CountOverflowError(
                f"{type(self).__name__}{self._label()}: {what} {n} more values would take its count {have} "
                f"past {self.MAX_COUNT}, the most it holds (its int64 counters could overflow)")

    def update(self, values):
        """Fold ``values`` in: a numpy array, a pyarrow Array/ChunkedArray, or an
        object exposing ``__arrow_c_array__`` / ``__arrow_c_stream__``.

        Returns ``self``.  On bad input the sketch raises before counting
        anything from this call, so it keeps everything counted before.
        """
        with self._mutating():
            self._update(values)
        return self

    def merge(self, other):
        """Fold ``other`` (same class, same parameters) into this sketch, in place.

        ``other`` is not modified.  Raises IncompatibleSketchError naming both
        parameter sets when they differ.  Returns ``self``.
        """
        if type(other) is not type(self):
            raise IncompatibleSketchError(
                f"cannot merge {type(other).__name__} into {type(self).__name__}{self._label()}")
        if other is self:
            other = other.copy()
        # _mutating(other) written out: a window close merges tens of thousands of sketches, and the
        # two generator context managers were most of a small merge's cost
        if not self._lock.acquire(blocking=False):
            raise ConcurrentUseError(
                f"{type(self).__name__}{self._label()} is being mutated by another thread; "
                "guard it with a lock or give each thread its own sketch and merge")
        try:
            first, second = ((self._state_lock, other._state_lock) if id(self) < id(other)
                             else (other._state_lock, self._state_lock))
            with first, second:
                self._room(other.count, "merging")
                self._merge(other)
        finally:
            self._lock.release()
        return self

    def _compatible(self, other) -> None:
        """Raise IncompatibleSketchError unless ``other`` (same class) has parameters this sketch can
        merge (hook; by default any)."""

    def check_mergeable(self, other) -> None:
        """Raise what :meth:`merge` of ``other`` would raise for its class, parameters or count
        (IncompatibleSketchError, CountOverflowError), changing nothing: a caller merging several
        sketches checks every one before merging any."""
        if type(other) is not type(self):
            raise IncompatibleSketchError(
                f"cannot merge {type(other).__name__} into {type(self).__name__}{self._label()}")
        with self._reading(other):
            self._compatible(other)
            self._room(other.count, "merging")

    def merge_many(self, others) -> "Sketch":
        """:meth:`merge` each of ``others`` in turn (the same state), with the locks taken and the
        classes, parameters and total count checked once, before any is merged."""
        others = [o.copy() if o is self else o for o in others]
        if not others:
            return self
        for o in others:
            if type(o) is not type(self):
                raise IncompatibleSketchError(
                    f"cannot merge {type(o).__name__} into {type(self).__name__}{self._label()}")
        if not self._lock.acquire(blocking=False):
            raise ConcurrentUseError(
                f"{type(self).__name__}{self._label()} is being mutated by another thread; "
                "guard it with a lock or give each thread its own sketch and merge")
        # _reading(*others) written out, as in merge: a window close makes thousands of these calls
        locks = sorted({id(s): s._state_lock for s in (self, *others)}.items())
        try:
            for _, lock in locks:  # blocking: a reader holds one only for its call
                lock.acquire()
            try:
                for o in others:
                    self._compatible(o)
                self._room(sum(o.count for o in others), "merging")
                self._merge_many(others)
            finally:
                for _, lock in reversed(locks):
                    lock.release()
        finally:
            self._lock.release()
        return self

    def _merge_many(self, others) -> None:
        """:meth:`_merge` of each of ``others`` in order; sketches with a cheaper way override it."""
        for o in others:
            self._merge(o)

    @classmethod
    def merge_each(cls, targets, groups) -> None:
        """``targets[i].merge_many(groups[i])`` for every ``i``: the same states, bit for bit.

        ``targets`` are distinct sketches of this class, none of them in another target's group
        (one in its own group is copied first, as :meth:`merge_many` does); every target's classes,
        parameters and total count are checked before any target is merged, so an error merges
        nothing.  Sketches with a cheaper way for many targets at once override :meth:`_merge_each`
        (a window close merges every segment's panes of every column together)."""
        targets, groups = list(targets), list(groups)
        if len(groups) != len(targets):
            raise InvalidInputError(f"merge_each: {len(targets)} targets and {len(groups)} groups")
        groups = [[o.copy() if o is t else o for o in g] for t, g in zip(targets, groups)]
        for t, g in zip(targets, groups):
            if type(t) is not cls:
                raise IncompatibleSketchError(f"cannot merge into {type(t).__name__} as {cls.__name__}")
            for o in g:
                if type(o) is not cls:
                    raise IncompatibleSketchError(
                        f"cannot merge {type(o).__name__} into {cls.__name__}{t._label()}")
        held = []
        try:
            for t in targets:
                if not t._lock.acquire(blocking=False):
                    raise t._busy()
                held.append(t)
            with _states_held([*targets, *(o for g in groups for o in g)]):
                cls._merge_each(targets, groups)
        finally:
            for t in held:
                t._lock.release()

    @classmethod
    def _merge_each(cls, targets, groups) -> None:
        """Check every target's group (parameters, count) as :meth:`merge_many` does, then
        :meth:`_merge_many` each; raise before changing any.  Overridden with array operations."""
        for t, g in zip(targets, groups):
            for o in g:
                t._compatible(o)
            if g:
                t._room(sum(o.count for o in g), "merging")
        for t, g in zip(targets, groups):
            if g:
                t._merge_many(g)

    @classmethod
    def _room_each(cls, targets, groups, have: np.ndarray, add: np.ndarray) -> None:
        """:meth:`_room` of each target for its group's count, from float64 estimates ``have`` (the
        targets' counts) and ``add`` (the groups'): the exact counts are added only where the
        estimate comes within a factor 2 of the cap (the error of a float sum is far below that)."""
        for k in np.flatnonzero(have + add > cls.MAX_COUNT / 2).tolist():
            targets[k]._room(sum(o.count for o in groups[k]), "merging")

    def copy(self):
        """An independent deep copy."""
        with self._state_lock:  # _reading() for one sketch, without a generator per call
            return self._copy()

    def to_bytes(self) -> bytes:
        """Serialize to the versioned, checksummed fastdrift sketch format."""
        with self._state_lock:  # _reading() for one sketch, without a generator per call
            params, payload = self._params(), self._payload()
        return codec.encode(self.KIND, params, payload)

    @classmethod
    def from_bytes(cls, data):
        """Rebuild a sketch from :meth:`to_bytes` output.

        Never trusts its input: truncated, altered, oversized or foreign bytes
        raise :class:`~fastdrift.errors.CorruptStateError` (a ValueError).
        """
        _, params, payload = codec.decode(data, expected_kind=cls.KIND)
        return cls._decode(params, payload)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        with self._reading(other):
            return self._params() == other._params() and self._payload() == other._payload()

    __hash__ = None  # mutable


@contextmanager
def _states_held(sketches):
    """Hold the state locks of ``sketches`` (repeats allowed).  Each is first tried without
    waiting, in any order (thousands of them in a window close: sorting would cost more than the
    merge); if one is busy, those taken are let go and all are then taken, waiting, in the global
    order of :meth:`Sketch._reading`: this never waits while holding a lock out of that order."""
    locks = [s._state_lock for s in sketches]  # a repeat is taken twice: the locks are reentrant
    taken = []
    try:
        for lock in locks:
            if not lock.acquire(blocking=False):
                break
            taken.append(lock)
        if len(taken) < len(locks):
            while taken:
                taken.pop().release()
            for _, lock in sorted({id(s): s._state_lock for s in sketches}.items()):
                lock.acquire()
                taken.append(lock)
        yield
    finally:
        for lock in reversed(taken):
            lock.release()


@contextmanager
def mutating_all(sketches):
    """``Sketch._mutating`` of every one of ``sketches`` (distinct) in one context: the segments'
    sketches of a column counted in one kernel call."""
    held = []
    try:
        for sk in sketches:
            if not sk._lock.acquire(blocking=False):
                raise sk._busy()
            held.append(sk)
        states = [lock for _, lock in sorted(((id(sk), sk._state_lock) for sk in held), key=lambda t: t[0])]
        for lock in states:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(states):
                lock.release()
    finally:
        for sk in held:
            sk._lock.release()
