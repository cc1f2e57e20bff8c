"""The monitor stage: windows of drift, data-quality and serving signals against a reference.

Imports only sketches, metrics, records, adapters and errors; the alert
evaluator and exporters consume its :class:`~fastdrift.records.WindowReport`
records downstream (see :mod:`fastdrift.pipeline`).
"""
from .config import EvidenceSpec, FeatureSpec, MonitorConfig, WindowSpec, config_from_dict, load_config
from .core import MonitorCore, build_reference, report_from_profiles

__all__ = ["MonitorCore", "MonitorConfig", "FeatureSpec", "WindowSpec", "EvidenceSpec", "load_config",
           "config_from_dict", "build_reference", "report_from_profiles"]
