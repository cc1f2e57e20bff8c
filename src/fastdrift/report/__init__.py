"""Presenting a reference-vs-current comparison: text, JSON and a self-contained HTML report.

Downstream of the monitor and the alert evaluator (it reuses both to turn two
profiles into signals and alerts); only the command line and the demo import it.
"""
from .compare import Comparison, FeatureRow, QuantileRow, compare, format_text, to_json
from .html import render

__all__ = ["Comparison", "FeatureRow", "QuantileRow", "compare", "format_text", "to_json", "render"]
