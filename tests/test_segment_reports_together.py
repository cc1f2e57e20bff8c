"""A segmented window's report computes the whole's and every segment's drift in one call: each
segment's drift signals equal those of a report of the segment alone, and those of an unsegmented
monitor fed only the segment's rows (compared against the whole reference)."""
import numpy as np
import pyarrow.compute as pc

from fastdrift.monitor import Monitor
from fastdrift.monitor.signals import build_report, window_drifts
from fastdrift.records import to_json
from test_window_close_merge import ARMS, closed_sketches, config, table


def _drift_fields(r):
    return to_json({"features": dict(r.features), "prediction": r.prediction, "rows": r.rows,
                    "latency": r.latency, "kpis": dict(r.kpis), "errors": r.errors})


def test_segment_reports_equal_each_segment_alone_and_its_own_monitor():
    rng = np.random.default_rng(3)
    ref = table(np.random.default_rng(7), 4000, -1000, 0)
    batches = [table(rng, 400, 30 * j, 30 * j + 35) for j in range(12)]
    seg = Monitor(ref, config=config(segment_by=("arm",), segment_reference="whole"), rules=[])
    closed = closed_sketches(seg, batches)
    reports = seg.reports()
    assert len(closed) == len(reports) > 6
    own = {}
    for arm in ARMS:
        only = Monitor(ref, config=config(), rules=[])
        closed_sketches(only, [b.filter(pc.equal(b["arm"], arm)) for b in batches])
        own[f"arm={arm}"] = {(r.window_start, r.window_end): r for r in only.reports()}
    compared = 0
    for (s, e, ws, span), rep in zip(closed, reports):
        assert to_json(build_report(ws, s, e, True, span)) == to_json(rep)
        assert set(rep.segments) == set(ws.segments)
        for key, sub in rep.segments.items():
            seg_ref, used = ws.ref.for_segment(key)
            alone = build_report(ws.segments[key], s, e, True, span, window_drifts(ws.segments[key], ref=seg_ref),
                                 ref=seg_ref, segment=key, segment_reference=used, evidence_rows=sub.evidence)
            assert to_json(alone) == to_json(sub)
            mine = own[key].get((s, e))
            if mine is not None:  # its watermark is its own rows': it may close fewer windows
                assert _drift_fields(sub) == _drift_fields(mine)
                compared += 1
    assert compared > 10


def _exact_bytes(ws):
    """What a window's whole holds exactly whatever the merge order: its own latency t-digest,
    latency buckets and counters, and the columns' bin counts (the moments merged from the segments
    differ from one stream's by rounding, a categorical's categories by their order)."""
    def bins(cp):
        if cp.histogram is not None:
            return cp.histogram.to_bytes()
        c = cp.categorical  # its categories are in first-seen order, which the merge order changes
        return dict(zip(c.categories, c.counts.tolist())), c.other_count, c.null_count

    bins = [bins(cp) for cp in (*ws.features.values(), ws.prediction)]
    return bins + [ws.latency.to_bytes(), ws.latency_buckets.to_bytes(), ws.rows, ws.errors, ws.error_rows,
                   ws.latency_invalid, ws.latency_sum]


def test_a_segmented_window_whole_equals_an_unsegmented_monitor_byte_for_byte():
    # the whole's own sketches (latency t-digest and buckets, counters) and the bins merged from the
    # segments against a monitor without segments fed the same rows
    rng = np.random.default_rng(4)
    ref = table(np.random.default_rng(7), 4000, -1000, 0)
    batches = [table(rng, 400, 30 * j, 30 * j + 35) for j in range(10)]
    seg = closed_sketches(Monitor(ref, config=config(segment_by=("arm",)), rules=[]), batches)
    plain = closed_sketches(Monitor(ref, config=config(), rules=[]), batches)
    assert len(seg) == len(plain) > 5
    for (s0, e0, a, _), (s1, e1, b, _) in zip(seg, plain):
        assert (s0, e0) == (s1, e1)
        assert _exact_bytes(a) == _exact_bytes(b)
