"""Reports held by a monitor leave the cyclic garbage collector little to traverse: a DriftSignal's
contributions are held as strings and floats (untracked), read back as equal BinContribution records."""
import dataclasses
import gc
import json
import math

import numpy as np
import pyarrow as pa
import pytest

from fastdrift.monitor import Monitor, config_from_dict
from fastdrift.records import BinContribution, DriftSignal, from_json, to_json, to_jsonable


def _table(rng, n, t0, t1):
    return pa.table({"x": rng.normal(size=n), "y": rng.exponential(size=n),
                     "c": pa.array(rng.choice(["a", "b", "c", None], n).tolist()),
                     "pred": rng.random(n), "arm": rng.choice(["s", "k", "w"], n),
                     "ts": np.sort(rng.uniform(t0, t1, n))})


def _signals(report):
    for r in (report, *report.segments.values()):
        yield from r.features.values()
        if r.prediction is not None:
            yield r.prediction


def test_closed_reports_drift_signals_hold_no_tracked_objects():
    rng = np.random.default_rng(3)
    cfg = config_from_dict(dict(features=["x", "y", "c"], prediction="pred", event_time="ts", segment_by=["arm"],
                                window={"by": "time", "size": 100, "slide": 50}))
    m = Monitor(_table(rng, 3000, -1000, 0), config=cfg)
    m.update(_table(rng, 3000, 0, 400))
    reports = m.reports()
    assert len(reports) >= 5 and all(len(r.segments) == 3 for r in reports)
    gc.collect()
    gc.collect()
    signals = [s for r in reports for s in _signals(r)]
    assert len(signals) == len(reports) * 4 * 4  # the whole and 3 segments, 3 features and the prediction
    assert sum(len(s.contributions) for s in signals) >= 8 * len(signals)
    for s in signals:  # beside its class, nothing a full collection would traverse
        tracked = [type(o).__name__ for o in gc.get_referents(s) if gc.is_tracked(o) and not isinstance(o, type)]
        assert tracked == [], (s.column, tracked)
    # what is read back: BinContribution records whose shares add up like the bins' counts do
    for s in signals:
        assert all(type(c) is BinContribution for c in s.contributions)
        if s.kind == "numeric" and len(s.contributions) == 10 and s.n_cur:  # all 10 reference deciles
            assert math.isclose(sum(c.cur_share for c in s.contributions), 1.0, abs_tol=1e-12)
            assert math.isclose(sum(c.ref_share for c in s.contributions), 1.0, abs_tol=1e-12)


def _signal(contribs):
    return DriftSignal("x", "numeric", "psi", 0.25, 100, 90, 0.0, 0.1, contribs, 0.01, 1.0, 1.5)


def test_drift_signal_contributions_behave_as_a_field():
    bins = (BinContribution("[1, 2)", 0.1, 0.3, 0.2), BinContribution("(-inf, 1)", 0.9, 0.7, 0.05))
    s = _signal(bins)
    assert s.contributions == bins and type(s.contributions) is tuple
    assert s == _signal(bins) and hash(s) == hash(_signal(bins)) and s != _signal(bins[::-1])
    assert repr(s).count("BinContribution(label=") == 2 and "contributions=(BinContribution(label='[1, 2)'" in repr(s)
    assert from_json(json.loads(json.dumps(to_json(s)))) == s
    assert to_jsonable(s)["contributions"] == [
        {"label": "[1, 2)", "ref_share": 0.1, "cur_share": 0.3, "contribution": 0.2},
        {"label": "(-inf, 1)", "ref_share": 0.9, "cur_share": 0.7, "contribution": 0.05}]
    assert dataclasses.asdict(s)["contributions"] == tuple(dataclasses.asdict(b) for b in bins)
    assert dataclasses.replace(s, value=0.5).contributions == bins
    assert dataclasses.replace(s, contributions=()).contributions == ()
    assert DriftSignal("x", "numeric", "psi", 0.0, 1, 1, 0.0, 0.0).contributions == ()
    assert [f.default for f in dataclasses.fields(DriftSignal) if f.name == "contributions"] == [()]
    other = [bins[0]]  # not a tuple of BinContribution: held and returned as given, as any field
    assert _signal(other).contributions is other
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.contributions = ()  # type: ignore[misc]
