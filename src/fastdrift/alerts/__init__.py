"""Alert evaluation: declarative rules over window reports, tiered, gated, owned.

The monitor hands each closed :class:`~fastdrift.records.WindowReport` to an
:class:`AlertEvaluator`; it returns (and sends to its sinks) the alert
transitions - pending, firing, resolved - each an immutable
:class:`~fastdrift.records.Alert` carrying the observed values against their
thresholds, the top drifting features with per-bin contributions, redacted
evidence rows, the owner and the runbook.

>>> from fastdrift.alerts import AlertEvaluator, default_rules
>>> ev = AlertEvaluator(default_rules(["age", "income"], "score", latency=True, error=True))
>>> ev.promotion_allowed()
True
"""
from .evaluator import AlertEvaluator
from .rules import SEVERITIES, SIGNALS, CanarySpec, Condition, Gate, Rule, default_rules, load_rules, rules_to_data
from .sinks import CallbackSink, JsonLinesSink
from .actions import ActionSink

__all__ = [
    "Rule", "Condition", "Gate", "AlertEvaluator", "load_rules", "default_rules",
    "JsonLinesSink", "CallbackSink", "ActionSink", "CanarySpec", "SIGNALS", "SEVERITIES", "rules_to_data",
]
