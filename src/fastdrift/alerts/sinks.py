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
from typing import Callable, Union

from ..errors import InvalidInputError
from ..records import Alert, to_jsonable

__all__ = ["CallbackSink", "JsonLinesSink", "alert_to_json"]


def alert_to_json(alert: Alert) -> str:
    """One alert as a single-line JSON object (NaN / inf as strings, keys sorted)."""
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
    """

    def __init__(self, fn: Callable[[Alert], object]):
        if not callable(fn):
            raise InvalidInputError(f"CallbackSink needs a callable, got {fn!r}")
        self.fn = fn

    def send(self, alert: Alert) -> None:
        """Deliver one alert."""
        self.fn(alert)

    def __repr__(self) -> str:
        return f"CallbackSink({getattr(self.fn, '__qualname__', self.fn)!r})"


class JsonLinesSink:
    """Append each alert as one JSON line to a file.

    The file is opened in append mode per alert batch and each line is
    written with a single ``write`` and flushed, so concurrent readers
    (``tail -f``, log shippers) never see half a record, and a crash loses
    at most the alert being written.

    Parameters
    ----------
    path : str or os.PathLike
    fsync : bool, default False
        Also ``os.fsync`` after each line (durable across power loss; slower).
    """

    def __init__(self, path: Union[str, os.PathLike], *, fsync: bool = False):
        self.path = os.fspath(path)
        self.fsync = bool(fsync)
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        """Append one alert."""
        line = alert_to_json(alert) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())

    def __repr__(self) -> str:
        return f"JsonLinesSink({self.path!r})"
