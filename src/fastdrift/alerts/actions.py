"""Acting on alerts: a sink that calls the user's ``rollback()`` / ``throttle()`` / ``fallback()``.

:class:`ActionSink` receives alert transitions like any sink (``Monitor(sinks=...)``,
``Fleet(sinks=...)``, ``AlertEvaluator(sinks=...)``) and only queues them: the callbacks run on the
sink's own worker thread, never on the thread that closed the window (a request thread calling
``observe``).  For each rule whose action is configured - the rule's ``action:`` key, or the sink's
``rules=`` mapping - an action runs at most once per *incident* of that rule, at most once per
``min_interval`` seconds per action, and every decision (ran, raised, dry run, rate limited) is an
:class:`~fastdrift.records.ActionRecord`, kept in memory and appended to the alert log.

An incident is one active spell of a rule: it opens with the rule's first pending or firing alert
and closes with its resolution; its id is ``"<rule>@<window_start of its first alert>"``.  The
incident memory is the sink's own (in-process): a new process starts with none.
"""
from __future__ import annotations

import collections
import datetime as _dt
import logging
import os
import queue
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

from ..errors import InvalidInputError
from ..records import ActionRecord
from .rules import Rule, action_name, load_rules
from .sinks import JsonLinesSink

__all__ = ["ActionSink"]

log = logging.getLogger("fastdrift.alerts")

_STOP = object()
_ACT_STATES = ("pending", "firing")
_VERDICT_QUIET = ("promote", "hold")


def _callable_name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__  # a callable object: its class


class ActionSink:
    """Run callbacks when rules say so: once per incident, rate-limited, off the request thread, recorded.

    Parameters
    ----------
    rollback, throttle, fallback : callable, optional
        ``fn(alert)``, run for rules whose action is ``"rollback"`` / ``"throttle"`` / ``"fallback"``.
    actions : mapping of str to callable, optional
        Further actions by name.
    rules : mapping, or rules, optional
        Which rule runs which action: ``{rule_name: action_name}``, or rules (anything
        :func:`~fastdrift.alerts.load_rules` accepts) whose ``action`` keys are read.  Without it,
        the rules of the evaluator the sink is given to are read (``Monitor(rules=..., sinks=[sink])``);
        a mapping given here takes precedence over the rules' own ``action`` keys.
    dry_run : bool, default False
        Record what would run, call nothing.
    min_interval : float or mapping of str to float, default 300
        Seconds an action must wait after it last ran (per action name; a mapping may set each, the
        rest default to 300).  A decision inside the interval is recorded as ``rate_limited``.
    states : iterable of str, default ("firing",)
        Alert states that trigger the action (``"pending"`` acts before the rule's ``for`` windows).
    severities : iterable of str, default ("warning", "critical")
        Severities that trigger it (``("critical",)``: roll back on the critical tier only).
    log : JsonLinesSink, path, or None
        Alert log the action records are appended to (give the same ``JsonLinesSink`` as the one
        writing the alerts, so both share one file and one lock).
    name : str, optional
        Who acts, in each record (``actor``); default ``"fastdrift@<host>:<pid>"``.
    max_records : int, default 10000
        Action records kept in memory (the oldest are dropped first; the log keeps all).
    max_queue : int, default 10000
        Alerts waiting for the worker; beyond it (a callback stuck for long) alerts are dropped,
        counted in :attr:`dropped` and logged, and monitoring goes on.

    Notes
    -----
    A callback that raises is logged (logger ``fastdrift.alerts``) and recorded with its error; a
    slow callback delays only the actions after it.  :meth:`flush` waits until everything sent so
    far is decided; :meth:`close` stops the worker.  Canary verdict records (any record with a
    ``verdict`` field) act like alerts: a verdict naming a configured action (``"rollback"``) fires
    it, ``"promote"`` / ``"hold"`` ends the incident.
    """

    def __init__(self, rollback: Optional[Callable] = None, throttle: Optional[Callable] = None,
                 fallback: Optional[Callable] = None, *, actions: Optional[Mapping[str, Callable]] = None,
                 rules: Any = None, dry_run: bool = False,
                 min_interval: Union[float, Mapping[str, float]] = 300.0,
                 states: Iterable[str] = ("firing",), severities: Iterable[str] = ("warning", "critical"),
                 log: Union[JsonLinesSink, str, os.PathLike, None] = None, name: Optional[str] = None,
                 max_records: int = 10_000, max_queue: int = 10_000):
        callbacks = {"rollback": rollback, "throttle": throttle, "fallback": fallback}
        callbacks.update(dict(actions or {}))
        self.callbacks: Dict[str, Callable] = {}
        for act, fn in callbacks.items():
            action_name(act, "ActionSink actions")
            if fn is None:
                continue
            if not callable(fn):
                raise InvalidInputError(f"ActionSink: the {act!r} action needs a callable, got {fn!r}")
            self.callbacks[act] = fn
        if not isinstance(dry_run, bool):
            raise InvalidInputError(f"ActionSink: dry_run must be True or False, got {dry_run!r}")
        self.dry_run = dry_run
        self._explicit: Dict[str, str] = {}
        self._from_rules: Dict[str, str] = {}
        if isinstance(rules, Mapping) and "rules" not in rules:
            for rule, act in rules.items():
                if not isinstance(rule, str) or not rule:
                    raise InvalidInputError(f"ActionSink rules: rule names must be strings, got {rule!r}")
                self._explicit[rule] = action_name(act, f"ActionSink rules[{rule!r}]")
        elif rules is not None:
            self.bind_rules(load_rules(rules))
        self._intervals = self._check_intervals(min_interval)
        self.states = self._subset(states, _ACT_STATES, "states")
        self.severities = self._subset(severities, ("warning", "critical"), "severities")
        if log is None or isinstance(log, JsonLinesSink):
            self.log = log
        elif isinstance(log, (str, os.PathLike)):
            self.log = JsonLinesSink(log)
        else:
            raise InvalidInputError(f"ActionSink: log must be a JsonLinesSink or a path, got {log!r}")
        self.name = name if name is not None else f"fastdrift@{socket.gethostname()}:{os.getpid()}"
        for what, v in (("max_records", max_records), ("max_queue", max_queue)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"ActionSink: {what} must be a positive integer, got {v!r}")
        self._records: collections.deque = collections.deque(maxlen=max_records)
        self._records_lock = threading.Lock()
        self._incidents: Dict[str, str] = {}          # rule -> open incident id
        self._done: set = set()                       # (incident, action) decided
        self._last_run: Dict[str, float] = {}         # action -> monotonic time it last ran
        self.dropped = 0
        self._closed = False
        self.failures = 0
        self._queue: queue.Queue = queue.Queue(max_queue)
        self.thread = threading.Thread(target=self._work, name="fastdrift-actions", daemon=True)
        self.thread.start()

    # -- configuration --------------------------------------------------------------------------
    @staticmethod
    def _subset(values, allowed, what) -> Tuple[str, ...]:
        values = (values,) if isinstance(values, str) else tuple(values)
        if not values or any(v not in allowed for v in values):
            raise InvalidInputError(f"ActionSink: {what} must be a non-empty subset of {allowed}, got {values!r}")
        return values

    @staticmethod
    def _check_intervals(spec) -> Tuple[float, Dict[str, float]]:
        def seconds(v, what):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf"):
                raise InvalidInputError(f"ActionSink: {what} must be a finite number of seconds >= 0, got {v!r}")
            return float(v)
        if isinstance(spec, Mapping):
            return 300.0, {action_name(k, "ActionSink min_interval"): seconds(v, f"min_interval[{k!r}]")
                           for k, v in spec.items()}
        return seconds(spec, "min_interval"), {}

    def bind_rules(self, rules: Iterable[Rule]) -> None:
        """Read the ``action`` keys of ``rules`` (an evaluator calls this with its rules)."""
        found = {r.name: r.action for r in rules if isinstance(r, Rule) and r.action is not None}
        missing = sorted({a for a in found.values() if a not in self.callbacks})
        if missing and not self.dry_run:
            log.warning("ActionSink: rules name actions with no callback: %s", ", ".join(missing))
        self._from_rules = found

    def action_for(self, rule: str) -> Optional[str]:
        """The action configured for ``rule`` (None: no action)."""
        return self._explicit.get(rule, self._from_rules.get(rule))

    # -- the sink protocol ----------------------------------------------------------------------
    def send(self, alert: Any) -> None:
        """Queue one alert (or canary verdict record) for the worker; returns at once."""
        try:
            if self._closed:
                raise queue.Full
            self._queue.put_nowait(alert)
        except queue.Full:
            with self._records_lock:
                self.dropped += 1
            log.warning("ActionSink: %s; alert of rule %r dropped",
                        "closed" if self._closed else "queue full (a callback is stuck?)", getattr(alert, "rule", None))

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every alert sent so far is decided; False if ``timeout`` seconds passed first."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def close(self, timeout: Optional[float] = None) -> None:
        """Decide what is queued, then stop the worker thread (alerts sent afterwards are dropped)."""
        if self.thread.is_alive() and not self._closed:
            self._closed = True
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:  # a callback is stuck and the queue full: the daemon worker is left behind
                return
            self.thread.join(timeout)

    def __enter__(self) -> "ActionSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def records(self) -> Tuple[ActionRecord, ...]:
        """The action records kept in memory, oldest first."""
        with self._records_lock:
            return tuple(self._records)

    def __repr__(self) -> str:
        return f"ActionSink({sorted(self.callbacks)}, dry_run={self.dry_run})"

    # -- the worker -----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._decide(item)
            except Exception:  # noqa: BLE001 - the worker must outlive any record it is given
                log.exception("ActionSink: could not handle %r", item)
            finally:
                self._queue.task_done()

    def _decide(self, alert: Any) -> None:
        rule = str(getattr(alert, "rule", "") or type(alert).__name__)
        verdict = getattr(alert, "verdict", None)
        action = self.action_for(rule)
        if verdict is not None:  # a canary verdict: its verdict names the action, or ends the incident
            if action is None and verdict in self.callbacks:
                action = verdict
            state = "resolved" if verdict in _VERDICT_QUIET else "firing"
            severity = "critical"
        else:
            state, severity = getattr(alert, "state", ""), getattr(alert, "severity", "")
        seg = getattr(alert, "segment", "")  # a segment rule's incidents are per segment
        spell = f"{rule} in {seg}" if seg else rule
        if state == "resolved":
            closed = self._incidents.pop(spell, None)
            self._done = {d for d in self._done if d[0] != closed}   # memory stays bounded by open incidents
            return
        if state not in _ACT_STATES:
            return
        incident = self._incidents.get(spell)
        if incident is None:
            incident = self._incidents[spell] = f"{spell}@{getattr(alert, 'window_start', '')}"
        if action is None or state not in self.states or severity not in self.severities \
                or (incident, action) in self._done:
            return
        self._done.add((incident, action))
        fn = self.callbacks.get(action)
        now = time.monotonic()
        interval = self._intervals[1].get(action, self._intervals[0])
        last = self._last_run.get(action)
        error, duration = "", 0.0
        if self.dry_run:
            outcome = "dry_run"
        elif fn is None:
            outcome = "no_callback"
        elif last is not None and now - last < interval:
            outcome = "rate_limited"
        else:
            self._last_run[action] = now
            start = time.perf_counter()
            try:
                fn(alert)
                outcome = "ok"
            except Exception as exc:  # noqa: BLE001 - a user's callback must never break monitoring
                outcome, error = "error", f"{type(exc).__name__}: {exc}"
                self.failures += 1
                log.exception("ActionSink: action %r for rule %r (incident %s) raised", action, rule, incident)
            duration = (time.perf_counter() - start) * 1e3
        rec = ActionRecord(
            action=action, rule=rule, incident=incident, severity=str(severity), alert_state=str(state),
            window_start=getattr(alert, "window_start", None), window_end=getattr(alert, "window_end", None),
            reason=str(getattr(alert, "summary", "") or (f"verdict {verdict}" if verdict else "")),
            owner=str(getattr(alert, "owner", "")), actor=self.name,
            callback=_callable_name(fn) if fn is not None else "", time=_dt.datetime.now(_dt.timezone.utc).isoformat(),
            dry_run=self.dry_run, outcome=outcome, error=error, duration_ms=duration)
        with self._records_lock:
            self._records.append(rec)
        log.info("ActionSink: %s %s for %s (%s): %s", "would run" if self.dry_run else "ran", action, rule,
                 incident, outcome)
        if self.log is not None:
            try:
                self.log.write(rec)
            except Exception:  # noqa: BLE001 - an unwritable log must not stop the actions
                log.exception("ActionSink: could not append the action record to %s", self.log)
