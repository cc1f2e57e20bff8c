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

:func:`make_labelled_tables` adds a ``label`` column (the outcome the model predicts: drawn
from ``score``, so the model is calibrated) and a third day with a *concept drift*: the same
distributions as the reference day for every feature and the prediction, but the labels of
one segment (``country`` = US, :data:`CONCEPT_SEGMENT`) flipped.  On the drifted day the data
drifts and the performance holds; on the concept day the performance falls (ROC AUC about
0.66 to 0.57) while no feature drifts: only labels tell the two apart.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["make_tables", "make_labelled_tables", "make_canary_tables", "demo_config", "CONCEPT_SEGMENT", "LABEL",
           "CANARY_SHARE", "CANARY_WINDOW"]

#: The column and value of the segment whose labels flip on the concept-drift day.
CONCEPT_SEGMENT = ("country", "US")
#: The label column of :func:`make_labelled_tables`.
LABEL = "label"

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


def _labelled(t: pa.Table, rng: np.random.Generator, flip: bool = False) -> pa.Table:
    label = rng.random(t.num_rows) < t["score"].to_numpy()  # a calibrated model: P(label = 1) = score
    if flip:
        col, value = CONCEPT_SEGMENT
        label ^= np.asarray(t[col].cast(pa.string()).to_numpy(zero_copy_only=False)) == value
    return t.append_column(LABEL, pa.array(label))


def make_labelled_tables(rows: int = 200_000, seed: int = 7):
    """(reference, drifted, concept) Arrow tables of ``rows`` rows each, with a ``label`` column.

    ``reference`` and ``drifted`` are :func:`make_tables`' rows; ``concept`` is drawn like the
    reference, with the labels of :data:`CONCEPT_SEGMENT` flipped.
    """
    rng = np.random.default_rng(seed)
    ref, cur, concept = (_table(rng, rows, drift=d) for d in (False, True, False))
    lrng = np.random.default_rng([seed, 13])  # labels from their own stream: make_tables' rows stay the same
    return _labelled(ref, lrng), _labelled(cur, lrng), _labelled(concept, lrng, flip=True)


#: The canary arm's share of the traffic in :func:`make_canary_tables`, and its windows (seconds).
CANARY_SHARE = 0.15
CANARY_WINDOW = 60.0


def make_canary_tables(rows: int = 200_000, seed: int = 7, windows: int = 8):
    """(reference, traffic) for a canary rollout: ``traffic`` is drawn like the reference day, with an
    ``arm`` column (``canary`` for :data:`CANARY_SHARE` of the requests, the new model version;
    ``stable`` for the rest), a KPI ``revenue`` per request and event times ``ts`` over ``windows``
    windows of :data:`CANARY_WINDOW` seconds.  The canary is slower (latency x 1.6) and earns 15 %
    less revenue per request; everything else is the stable model's."""
    rng = np.random.default_rng([seed, 14])
    ref = _table(rng, max(rows // 4, 1), drift=False)
    ref = ref.append_column("revenue", pa.array(rng.gamma(2.0, 5.0, ref.num_rows)))
    t = _table(rng, rows, drift=False)
    canary = rng.random(rows) < CANARY_SHARE
    lat = t["latency_ms"].to_numpy() * np.where(canary, 1.6, 1.0)
    revenue = rng.gamma(2.0, 5.0, rows) * np.where(canary, 0.85, 1.0)
    ts = np.sort(rng.random(rows)) * windows * CANARY_WINDOW
    t = t.set_column(t.schema.get_field_index("latency_ms"), "latency_ms", pa.array(lat))
    t = t.append_column("revenue", pa.array(revenue)).append_column(
        "arm", pa.array(np.where(canary, "canary", "stable"))).append_column("ts", pa.array(ts))
    return ref, t


def demo_config():
    """The monitor config of the demo's model: ``score`` is the prediction, ``latency_ms`` the latency."""
    from .monitor.config import MonitorConfig
    return MonitorConfig(prediction="score", latency="latency_ms")
