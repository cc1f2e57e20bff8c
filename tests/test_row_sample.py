"""RowSample: bottom-k by a per-row hash, exact merges, redaction before storage, checked bytes."""
import hashlib

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from fastdrift.errors import CorruptStateError, IncompatibleSketchError
from fastdrift import codec
from fastdrift.sketches.sample import RowSample, row_keys


def _batch(n, start=0):
    return pa.record_batch({"id": np.arange(start, start + n), "email": [f"u{i}@x" for i in range(start, start + n)],
                            "x": np.arange(start, start + n) * 0.5})


def _oracle(n, rate, k, seed):
    """The k smallest eligible keys among rows 0..n-1, by sorting every key."""
    keys = row_keys(seed, 0, n).astype(object)
    ok = [(int(kk), i) for i, kk in enumerate(keys) if rate >= 1 or int(kk) < int(rate * 2.0 ** 64)]
    return [i for _, i in sorted(ok)[:k]]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 3000), rate=st.sampled_from([0.0, 0.003, 0.05, 0.5, 1.0]), k=st.integers(0, 40),
       seed=st.integers(0, 2 ** 64 - 1), cuts=st.lists(st.integers(0, 3000), max_size=5))
def test_any_split_and_merge_order_equals_the_sorted_oracle(n, rate, k, seed, cuts):
    b = _batch(n)
    bounds = sorted({0, n, *[c for c in cuts if c < n]})
    parts = []
    for lo, hi in zip(bounds, bounds[1:]):
        s = RowSample(["id"], rate=rate, max_rows=k, seed=seed)
        s.update(b.slice(lo, hi - lo), s.keys(lo, hi - lo))
        parts.append(s)
    whole = RowSample(["id"], rate=rate, max_rows=k, seed=seed)
    for s in reversed(parts):
        whole.merge(s)
    one = RowSample(["id"], rate=rate, max_rows=k, seed=seed).update(b, row_keys(seed, 0, n))
    assert [r["id"] for _, r in one.rows] == _oracle(n, rate, k, seed)
    assert whole == one
    assert RowSample.from_bytes(one.to_bytes()) == one


def test_rows_are_redacted_before_they_are_kept():
    s = RowSample(["id", "email", "x"], rate=1.0, max_rows=5, drop=["x"], hash=["email"], salt="pepper")
    s.update(_batch(100), s.keys(0, 100))
    assert len(s.rows) == 5
    for _, row in s.rows:
        assert set(row) == {"id", "email"}
        want = hashlib.sha256(("pepper\x00" + f"u{row['id']}@x").encode()).hexdigest()[:16]
        assert row["email"] == want
    assert b"@x" not in s.to_bytes()


def test_columns_narrowed_per_update_and_missing_columns_skipped():
    s = RowSample(["id", "nope"], rate=1.0, max_rows=3)
    s.update(_batch(10), s.keys(0, 10), columns=["id", "x", "nope"])
    assert all(set(r) == {"id", "x"} for _, r in s.rows)


def test_merge_refuses_other_settings_and_decoder_refuses_bad_bytes():
    a, b = RowSample(["id"], seed=1), RowSample(["id"], seed=2)
    with pytest.raises(IncompatibleSketchError):
        a.merge(b)
    good = RowSample(["id"], rate=1.0, max_rows=4).update(_batch(10), row_keys(0, 0, 10))
    _, params, _ = codec.decode(good.to_bytes())
    for payload in ('[["12", {}], ["3", {}]]', '[["-1", {}]]', '[["18446744073709551616", {}]]', '{"a": 1}',
                    '[["1", {}], ["2", {}], ["3", {}], ["4", {}], ["5", {}]]', "not json"):
        blob = codec.encode(codec.Kind.ROW_SAMPLE, params, codec.Writer().string(payload).getvalue())
        with pytest.raises(CorruptStateError):
            RowSample.from_bytes(blob)
    bad = codec.Writer().string('{"columns": ["id"], "rate": 2, "max_rows": 1, "seed": 0, "drop": [], '
                                '"hash": [], "salt": ""}').getvalue()
    with pytest.raises(CorruptStateError):
        RowSample.from_bytes(codec.encode(codec.Kind.ROW_SAMPLE, bad, codec.Writer().string("[]").getvalue()))


def test_monitor_keeps_evidence_at_rate_one():
    import fastdrift
    from fastdrift.monitor.config import EvidenceSpec
    t = pa.table({"x": np.arange(300, dtype=np.float64), "id": np.arange(300)})
    m = fastdrift.Monitor(t, features=["x"], request_id="id", window=100, rules=[],
                          evidence=EvidenceSpec(rate=1.0, max_rows=7))
    m.update(t)
    reps = m.reports()
    assert [len(r.evidence) for r in reps] == [7, 7, 7]
    assert all(100 * i <= row["id"] < 100 * (i + 1) for i, r in enumerate(reps) for row in r.evidence)


def test_merge_leaves_its_argument_and_copies_are_independent():
    a = RowSample(["id"], rate=0.5, max_rows=5, seed=3).update(_batch(50), row_keys(3, 0, 50))
    b = RowSample(["id"], rate=0.5, max_rows=5, seed=3).update(_batch(50, 50), row_keys(3, 50, 50))
    before = b.to_bytes()
    c = a.copy().merge(b)
    assert b.to_bytes() == before and c != a
    assert a.copy().merge(a) == a  # keys are unique: a sample merged with itself is itself


@settings(max_examples=200, deadline=None)
@given(pos=st.integers(0, 10_000), byte=st.integers(0, 255), cut=st.integers(0, 10_000))
def test_hostile_payload_behind_a_valid_checksum_raises_cleanly(pos, byte, cut):
    good = RowSample(["id", "x"], rate=1.0, max_rows=6).update(_batch(20), row_keys(0, 0, 20))
    _, params, payload = codec.decode(good.to_bytes())
    p = bytearray(payload)
    p[pos % len(p)] = byte
    blob = codec.encode(codec.Kind.ROW_SAMPLE, params, bytes(p[: max(cut % (len(p) + 1), 0)] if cut % 3 == 0 else p))
    try:
        s = RowSample.from_bytes(blob)
    except CorruptStateError:
        return
    assert len(s.rows) <= s.max_rows


def test_hostile_json_is_corrupt_state_not_a_crash():
    from fastdrift.sketches.sample import rows_from_json
    for doc in ([["²", {}]], [["١٢", {}]], [[12, {}]]):
        with pytest.raises(CorruptStateError):
            rows_from_json(doc, "test")
    deep = codec.Writer().string("[" * 200_000).getvalue()
    with pytest.raises(CorruptStateError, match="not valid JSON"):
        codec.Reader(deep, "test").json()


def test_rows_json_follows_every_change_of_the_kept_rows():
    """rows_json is cached between changes; after update, add, merge and decode it is the JSON
    of the rows kept then (json.dumps of rows_to_json as the oracle)."""
    import json
    from fastdrift.sketches.sample import jsonable, rows_to_json

    def oracle(s):
        return json.dumps(rows_to_json(s.rows), default=jsonable)

    s = RowSample(["id", "x"], rate=1.0, max_rows=5, seed=3)
    assert s.rows_json() == oracle(s) == "[]"
    s.update(_batch(3), s.keys(0, 3))
    first = s.rows_json()
    assert first == oracle(s) and len(json.loads(first)) == 3
    assert s.rows_json() is first  # unchanged rows: the cached string
    s.update(_batch(50, 3), s.keys(3, 50))
    assert s.rows_json() == oracle(s) != first
    other = RowSample(["id", "x"], rate=1.0, max_rows=5, seed=3).update(_batch(400, 53), s.keys(53, 400))
    s.merge(other)
    assert s.rows_json() == oracle(s)
    s.add([(0, {"id": -1, "x": -0.5})])
    assert json.loads(s.rows_json())[0] == ["0", {"id": -1, "x": -0.5}]
    back = RowSample.from_bytes(s.to_bytes())
    assert back.rows_json() == s.rows_json() == oracle(back)
