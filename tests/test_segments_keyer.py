"""The segment keyer: every row lands in the segment a plain-Python reading of its values names."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from fastdrift.adapters.segments import (NULL, OTHER, Segmenter, cap_keys, check_segment_columns,
                                         parse_segment_key, segment_key)
from fastdrift.errors import InvalidInputError, SchemaError

texts = st.one_of(st.none(), st.sampled_from(["a", "b", "c,d", "e=f", "g\\h", "", "<other>x"]))
ints = st.one_of(st.none(), st.integers(-3, 3))


def _text(v):
    return NULL if v is None else (str(v).lower() if isinstance(v, bool) else str(v))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(texts, ints, st.booleans()), min_size=0, max_size=60),
       st.integers(1, 12), st.integers(0, 5), st.booleans(),
       st.sampled_from(["sib", "s", "is", "b", "si"]))
def test_rows_land_in_the_segment_their_values_name(rows, cap, offset, dictionary, cols):
    s_col = pa.array([r[0] for r in rows], pa.string())
    if dictionary:
        s_col = s_col.dictionary_encode()
    batch = pa.record_batch({"s": s_col, "i": pa.array([r[1] for r in rows], pa.int16()),
                             "b": pa.array([r[2] for r in rows]), "x": pa.array(range(len(rows)))})
    batch = batch.slice(min(offset, len(rows)))
    rows = rows[min(offset, len(rows)):]
    pick = ["sib".index(c) for c in cols]  # one column (its first value seen first) or several
    rows = [tuple(r[j] for j in pick) for r in rows]
    seg = Segmenter(list(cols), max_segments=cap)
    codes = seg.assign(batch)
    # oracle: keys in first-seen order, the first `cap` distinct ones kept
    seen = []
    for r in rows:
        k = ",".join(f"{c}={_text(v).replace(chr(92), chr(92) * 2).replace(',', chr(92) + ',').replace('=', chr(92) + '=')}"
                     for c, v in zip(cols, r))
        if k not in seen:
            seen.append(k)
    kept = set(seen[:cap])
    expected = []
    for r in rows:
        k = segment_key(dict(zip(cols, r)))
        expected.append(k if k in kept else OTHER)
        assert parse_segment_key(k) == {c: _text(v) for c, v in zip(cols, r)}
    assert [seg.keys[c] for c in codes] == expected
    assert len([k for k in seg.keys if k != OTHER]) == min(cap, len(seen))
    # split: every row exactly once, order kept inside a segment
    got = {}
    for key, part in seg.split(batch, codes):
        got.setdefault(key, []).extend(part.column("x").to_pylist())
    xs = batch.column("x").to_pylist()
    want = {}
    for key, x in zip(expected, xs):
        want.setdefault(key, []).append(x)
    assert got == want


def test_keys_survive_batches_and_the_cap_holds_across_them():
    seg = Segmenter(["arm"], max_segments=2)
    seg.assign(pa.record_batch({"arm": ["stable", "canary"]}))
    codes = seg.assign(pa.record_batch({"arm": ["new", "canary", None]}))
    assert [seg.keys[c] for c in codes] == [OTHER, "arm=canary", OTHER]
    assert seg.keys == ["arm=stable", "arm=canary", OTHER]
    again = Segmenter(["arm"], max_segments=2, keys=seg.keys)
    assert again.keys == seg.keys


def test_types_that_name_segments_and_those_that_cannot():
    import datetime
    b = pa.record_batch({"d": pa.array([datetime.date(2026, 1, 2)]), "f": pa.array([2.5]),
                         "l": pa.array([[1]])})
    seg = Segmenter(["d", "f"])
    seg.assign(b)
    assert seg.keys == ["d=2026-01-02,f=2.5"]
    with pytest.raises(SchemaError, match="'l'"):
        Segmenter(["l"]).assign(b)
    with pytest.raises(SchemaError, match="'nope'"):
        Segmenter(["nope"]).assign(b)


def test_settings_are_checked():
    assert check_segment_columns("arm") == ("arm",)
    assert check_segment_columns(None) == ()
    for bad in ([1], ["a", "a"], [""]):
        with pytest.raises(InvalidInputError):
            check_segment_columns(bad)
    with pytest.raises(InvalidInputError):
        check_segment_columns(["a"], 0)
    with pytest.raises(InvalidInputError):
        parse_segment_key("novalue")
    assert parse_segment_key(OTHER) == {}


def test_cap_keys_keeps_order_and_other():
    assert cap_keys(["a", OTHER, "b", "c"], 2) == (["a", "b"], ["c"])


def test_many_columns_of_many_values_do_not_overflow():
    rng = np.random.default_rng(1)
    n = 5000
    cols = {f"c{i}": pa.array(rng.integers(0, 3000, n)) for i in range(6)}
    seg = Segmenter(list(cols), max_segments=10_000)
    codes = seg.assign(pa.record_batch(cols))
    tuples = list(zip(*[cols[c].to_pylist() for c in cols]))
    assert len(set(tuples)) == len(seg.keys)
    assert [seg.keys[c] for c in codes] == [segment_key(dict(zip(cols, t))) for t in tuples]
