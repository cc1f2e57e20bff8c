"""Closing a window merges each segment's panes at once (``WindowSketch.merge_all``): every segment's
closed-window state equals, sketch by sketch and byte for byte, merging its panes one at a time, and
an unsegmented monitor fed only that segment's rows."""
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings, strategies as st

from fastdrift.kernels.moments import moments_merge_many
from fastdrift.monitor import Monitor, config_from_dict
from mergeparts import chan_merge

ARMS = ["stable", "canary", "shadow", "blue"]


def table(rng, n, t0, t1):
    arm = rng.choice(ARMS, n, p=[0.5, 0.3, 0.15, 0.05])
    x = rng.normal(size=n)
    x[rng.random(n) < 0.02] = np.nan
    return pa.table({
        "x": x, "c": pa.array(rng.choice(["a", "b", "c", None], n).tolist()),
        "pred": rng.random(n), "lat": rng.exponential(10, n), "err": rng.random(n) < 0.05,
        "rev": rng.gamma(2.0, 3.0, n), "arm": arm, "ts": np.sort(rng.uniform(t0, t1, n)),
    })


def config(**kw):
    base = dict(features=["x", "c"], prediction="pred", latency="lat", error="err", kpis=["rev"],
                event_time="ts", window={"by": "time", "size": 100, "slide": 20}, evidence={"rate": 0})
    base.update(kw)
    return config_from_dict(base)


def column_bytes(ws):
    """Every sketch of a window sketch's columns, latency and KPIs, as bytes."""
    out = [s.to_bytes() for cp in (*ws.features.values(), ws.prediction) for s in cp.sketches()]
    out += [ws.latency.to_bytes(), ws.latency_buckets.to_bytes()] + [m.to_bytes() for m in ws.kpis.values()]
    return out + [ws.rows, ws.errors, ws.error_rows, ws.latency_invalid, ws.latency_sum]


def sketches(ws):
    return [s for cp in (*ws.features.values(), ws.prediction) for s in cp.sketches()] + list(ws.kpis.values())


def pairwise(empty, parts):
    """The oracle: each sketch of ``empty`` merged one pane at a time with ``Sketch.merge``."""
    out = []
    for j, acc in enumerate(sketches(empty)):
        for p in parts:
            acc.merge(sketches(p)[j])
        out.append(acc.to_bytes())
    for p in parts:
        empty.latency.merge(p.latency)
        _ = empty.latency.n_centroids  # the window close flushes after each pane, as this does
    return out + [empty.latency.to_bytes()]


def closed_sketches(monitor, batches):
    got = []
    monitor.ingest.on_sketches = lambda closed: got.extend(closed)
    for b in batches:
        monitor.update(b)
    return got


def test_segment_windows_equal_their_own_monitor_byte_for_byte():
    rng = np.random.default_rng(11)
    ref = table(np.random.default_rng(7), 4000, -1000, 0)
    batches = [table(rng, 400, 30 * j, 30 * j + 35) for j in range(14)]
    seg = Monitor(ref, config=config(segment_by=("arm",), segment_reference="whole"), rules=[])
    closed = closed_sketches(seg, batches)
    assert len(closed) > 8
    for arm in ARMS:
        only = Monitor(ref, config=config(), rules=[])
        own = closed_sketches(only, [b.filter(pc.equal(b["arm"], arm)) for b in batches])
        own = {(s, e): ws for s, e, ws, _ in own}  # its watermark is its own rows': it may close fewer
        pairs = [(ws.segments[f"arm={arm}"], own[(s, e)]) for s, e, ws, _ in closed
                 if f"arm={arm}" in ws.segments and (s, e) in own]
        assert len(pairs) > 6
        for m, o in pairs:
            assert column_bytes(m) == column_bytes(o)


def test_merge_all_equals_merging_one_pane_at_a_time():
    rng = np.random.default_rng(5)
    ref = table(np.random.default_rng(7), 4000, -1000, 0)
    m = Monitor(ref, config=config(segment_by=("arm",), window={"by": "time", "size": 100, "slide": 20,
                                                                  "allowed_lateness": 10_000}), rules=[])
    for j in range(6):
        m.update(table(rng, 500, 20 * j, 20 * j + 20))
    panes = [ws for _, ws in sorted(m.ingest.windower.open.items())]
    assert len(panes) >= 5
    merged = m.ingest.windower.new_sketch().merge_all(panes)
    for key, seg in merged.segments.items():
        parts = [p.segments[key] for p in panes if key in p.segments]
        empty = type(seg)(m.ingest.ref, m.ingest.config, segment=True)
        assert [s.to_bytes() for s in sketches(seg)] + [seg.latency.to_bytes()] == pairwise(empty, parts)
        assert seg.rows == sum(p.rows for p in parts)
    assert list(merged.segments) == list(dict.fromkeys(k for p in panes for k in p.segments))  # first-seen order


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 3), finite, finite, st.floats(0, 1e6)),
                min_size=1, max_size=8))
def test_moments_merge_many_is_the_pairwise_fold_bit_for_bit(parts):
    states = []
    for n, nulls, a, b, m2 in parts:
        lo, hi = min(a, b), max(a, b)
        flts = np.array([lo, hi, n * (lo + hi) / 2, (lo + hi) / 2, m2] if n else [math.inf, -math.inf, 0, 0, 0])
        states.append((np.array([n, nulls, 0, 1, 0], np.int64), flts))
    ints, flts = np.zeros(5, np.int64), np.array([math.inf, -math.inf, 0.0, 0.0, 0.0])
    oi, of = ints.copy(), flts.copy()
    moments_merge_many(ints, flts, np.stack([s[0] for s in states]), np.stack([s[1] for s in states]))
    for s_i, s_f in states:
        chan_merge(oi, of, s_i, s_f)
    assert ints.tobytes() == oi.tobytes() and flts.tobytes() == of.tobytes()
