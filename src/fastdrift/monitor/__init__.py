"""The monitor stage: windows of drift, data-quality and serving signals against a reference.

:class:`Monitor` owns the monitor's state (closed reports, the alert evaluator,
sinks, checkpoints); :class:`~fastdrift.monitor.ingest.Ingest` turns batches
and requests into closed :class:`~fastdrift.records.WindowReport` records.
"""
from .config import EvidenceSpec, FeatureSpec, LabelSpec, MonitorConfig, WindowSpec, config_from_dict, load_config
from .config import FreshnessSpec, ShadowSpec
from .ingest import Ingest, build_reference, report_from_profiles
from .monitor import Monitor

__all__ = ["Monitor", "Ingest", "MonitorConfig", "FeatureSpec", "WindowSpec", "EvidenceSpec", "LabelSpec",
           "ShadowSpec", "FreshnessSpec", "load_config",
           "config_from_dict", "build_reference", "report_from_profiles"]
