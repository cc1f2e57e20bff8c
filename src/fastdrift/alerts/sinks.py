"""Where alerts go: a Python callback, or one JSON object per line in a file.

A sink is any object with ``send(alert)``; :class:`AlertEvaluator` also
accepts a plain callable and wraps it in :class:`CallbackSink`. Sinks may
raise: the evaluator logs and counts the failure and carries on with the
other sinks, so a broken webhook never stops evaluation.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Callable, Iterable, Optional, Tuple, Union

from ..errors import InvalidInputError
from ..records import Alert, to_jsonable

__all__ = ["CallbackSink", "JsonLinesSink", "alert_to_json"]

_STATES = ("pending", "firing", "resolved")


def _states(states: Optional[Iterable[str]]) -> Tuple[str, ...]:
    """Validate a sink's state filter (None = every transition)."""
    if states is None:
        return _STATES
    states = (states,) if isinstance(states, str) else tuple(states)
    bad = [s for s in states if s not in _STATES]
    if bad or not states:
        raise InvalidInputError(f"sink states must be a non-empty subset of {_STATES}, got {states!r}")
    return states


def _wanted(alert: Alert, states: Tuple[str, ...]) -> bool:
    # a pending alert that ended without firing is "resolved" too; a sink
    # that never saw the pending one (a pager) must not get its resolution
    if alert.state == "resolved" and alert.previous_state == "pending":
        return "pending" in states
    return alert.state in states


def alert_to_json(alert: Alert) -> str:
    """One alert (or any record) as a single-line JSON object (NaN / inf as strings, keys sorted)."""
    # allow_nan=False: to_jsonable already spelled non-finite floats as
    # strings, and strict JSON keeps the file readable by any JSON parser
    return json.dumps(to_jsonable(alert), sort_keys=True, allow_nan=False, separators=(",", ":"))


class CallbackSink:
    """Call ``fn(alert)`` for every alert.

    Parameters
    ----------
    fn : callable
        Receives each :class:`~fastdrift.records.Alert`. Runs on the thread
        that called ``evaluate``; keep it short or hand off to a queue.
    states : iterable of str, optional
        Only these transitions (``"pending"``, ``"firing"``, ``"resolved"``);
        a pager typically wants ``("firing", "resolved")`` (then the
        resolution of a pending alert that never fired is not sent either).
        Default: all.
    """

    def __init__(self, fn: Callable[[Alert], object], *, states: Optional[Iterable[str]] = None):
        if not callable(fn):
            raise InvalidInputError(f"CallbackSink needs a callable, got {fn!r}")
        self.fn = fn
        self.states = _states(states)

    def send(self, alert: Alert) -> None:
        """Deliver one alert (if its state passes the filter)."""
        if _wanted(alert, self.states):
            self.fn(alert)

    def __repr__(self) -> str:
        return f"CallbackSink({getattr(self.fn, '__qualname__', self.fn)!r})"


class JsonLinesSink:
    """Append each alert as one JSON line to a file.

    The file is opened in append mode per alert and each line is
    written with a single ``write`` and flushed, so concurrent readers
    (``tail -f``, log shippers) never see half a record, and a crash loses
    at most the alert being written.

    Parameters
    ----------
    path : str or os.PathLike
    fsync : bool, default False
        Also ``os.fsync`` after each line (durable across power loss; slower).
    states : iterable of str, optional
        Only these transitions; default all.
    """

    def __init__(self, path: Union[str, os.PathLike], *, fsync: bool = False,
                 states: Optional[Iterable[str]] = None):
        self.path = os.fspath(path)
        self.fsync = bool(fsync)
        self.states = _states(states)
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        """Append one alert (if its state passes the filter)."""
        if not _wanted(alert, self.states):
            return
        self.write(alert)

    def write(self, record) -> None:
        """Append any record (e.g. an :class:`~fastdrift.records.ActionRecord`) as one JSON line,
        unfiltered, under the same lock as the alerts."""
        line = alert_to_json(record) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())

    def __repr__(self) -> str:
        return f"JsonLinesSink({self.path!r})"
