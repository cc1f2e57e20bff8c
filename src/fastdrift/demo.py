"""Built-in synthetic data for ``fastdrift demo``: a reference day of traffic for a
small credit-risk-like model and a drifted copy.

Drift is injected in exactly two features: ``income`` (a level shift of the
log-income, numeric) and ``country`` (the mix moves towards IN and a new
category, MX, appears).  Every other feature (``session_length``, ``age`` and its
2% missingness, ``tenure_days``, ``clicks``, ``device``, ``is_returning``) is
drawn from the same distribution on both days, so it must come out stable; the
prediction ``score`` depends on ``income`` and moves with it, as a real model's
output would.  ``latency_ms`` (the
serving latency, a role rather than a feature: see :func:`demo_config`) regresses
on the drifted day: a slower median and a 3% tail of 1.2-2.5 s requests, which
puts p99 above the default rules' 1 s critical threshold.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["make_tables", "demo_config"]

_COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "NG", "MX"]
_DEVICES = ["ios", "android", "web"]


def _table(rng: np.random.Generator, n: int, drift: bool) -> pa.Table:
    income = rng.lognormal(10.5 + (0.35 if drift else 0.0), 0.6, n)
    session = rng.gamma(2.0, 30.0, n)
    age = rng.normal(41, 12, n).round()
    age_missing = rng.random(n) < 0.02
    tenure = rng.exponential(400, n).astype(np.int64)
    clicks = rng.poisson(3.0, n).astype(np.int32)
    cp = np.array([.30, .15, .12, .10, .12, .09, .07, .05, .0])
    if drift:
        cp = np.array([.20, .12, .10, .08, .25, .09, .06, .05, .05])
    country = np.array(_COUNTRIES)[rng.choice(len(_COUNTRIES), n, p=cp / cp.sum())]
    dp = np.array([.45, .40, .15])
    device = np.array(_DEVICES)[rng.choice(len(_DEVICES), n, p=dp)]
    is_returning = rng.random(n) < 0.6
    score = 1 / (1 + np.exp(-(np.log(income) - 10.5 - 0.01 * (age - 41))))
    latency = rng.lognormal(np.log(60.0 if drift else 45.0), 0.5, n)
    if drift:
        slow = rng.random(n) < 0.03
        latency[slow] = rng.uniform(1200.0, 2500.0, int(slow.sum()))
    return pa.table({
        "income": income,
        "session_length": session.astype(np.float32),
        "age": pa.array(age, mask=age_missing),
        "tenure_days": tenure,
        "clicks": clicks,
        "country": pa.array(country).dictionary_encode(),
        "device": pa.array(device, type=pa.large_string()),
        "is_returning": is_returning,
        "score": score,
        "latency_ms": latency,
    })


def make_tables(rows: int = 200_000, seed: int = 7):
    """(reference, current) Arrow tables of ``rows`` rows each."""
    rng = np.random.default_rng(seed)
    return _table(rng, rows, drift=False), _table(rng, rows, drift=True)


def demo_config():
    """The monitor config of the demo's model: ``score`` is the prediction, ``latency_ms`` the latency."""
    from .monitor.config import MonitorConfig
    return MonitorConfig(prediction="score", latency="latency_ms")
