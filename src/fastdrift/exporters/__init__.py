"""Exporters: publish monitor results to other systems.

Submodules are imported explicitly (``from fastdrift.exporters.prometheus
import MonitorCollector``) so that their optional dependencies
(``prometheus_client``: ``pip install fastdrift[prometheus]``) are only
needed by those who use them.
"""
