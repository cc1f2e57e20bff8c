"""profile(): column kinds, selection, streaming against a reference, merge and bytes."""
import numpy as np
import pyarrow as pa
import pytest

import fastdrift
from fastdrift import CorruptStateError, IncompatibleSketchError, InvalidInputError, SchemaError
from fastdrift.demo import make_tables


@pytest.fixture(scope="module")
def tables():
    return make_tables(20_000, seed=3)


def test_profile_kinds(tables):
    ref, _ = tables
    p = fastdrift.profile(ref)
    kinds = {n: c.kind for n, c in p.columns.items()}
    assert kinds == {"income": "numeric", "session_length": "numeric", "age": "numeric",
                     "tenure_days": "numeric", "clicks": "numeric", "country": "categorical",
                     "device": "categorical", "is_returning": "categorical", "score": "numeric",
                     "latency_ms": "numeric"}
    assert p.rows == ref.num_rows
    for name, c in p.columns.items():
        assert c.count == ref.num_rows
    assert p["age"].histogram.null_count == ref.column("age").null_count
    np.testing.assert_array_equal(
        p["income"].histogram.edges,
        np.quantile(ref.column("income").to_numpy(), np.arange(1, 10) / 10))


def test_profile_select_and_override(tables):
    ref, _ = tables
    p = fastdrift.profile(ref, columns=["clicks", "country"], kinds={"clicks": "categorical"})
    assert list(p.columns) == ["clicks", "country"]
    assert p["clicks"].kind == "categorical"
    assert sum(p["clicks"].categorical.counts) == ref.num_rows
    with pytest.raises(SchemaError, match="nope"):
        fastdrift.profile(ref, columns=["nope"])
    with pytest.raises(InvalidInputError):
        fastdrift.profile(ref, kinds={"clicks": "text"})


def test_profile_skips_unsupported_types():
    t = pa.table({"x": [1.0, 2.0], "ts": pa.array([[1], [2]])})
    p = fastdrift.profile(t)
    assert list(p.columns) == ["x"] and p.skipped == ["ts"]
    with pytest.raises(SchemaError, match="ts"):
        fastdrift.profile(t, columns=["ts"])


def test_current_profile_streams_and_merges(tables):
    ref_t, cur_t = tables
    ref = fastdrift.profile(ref_t)
    whole = fastdrift.profile(cur_t, reference=ref)
    batches = cur_t.to_batches(max_chunksize=3000)
    parts = [fastdrift.profile(b, reference=ref) for b in batches]
    merged = ref.empty_like()
    for part in parts:
        merged.merge(part)
    assert merged.rows == whole.rows == cur_t.num_rows
    for name, c in whole.columns.items():
        m = merged[name]
        if c.kind == "numeric":
            assert m.histogram == c.histogram
            assert m.moments.n == c.moments.n
            assert m.moments.mean == pytest.approx(c.moments.mean, rel=1e-12)
        else:
            assert m.categorical == c.categorical


def test_profile_bytes_round_trip(tables):
    ref_t, _ = tables
    p = fastdrift.profile(ref_t)
    q = fastdrift.Profile.from_bytes(p.to_bytes())
    assert q == p and q.rows == p.rows and list(q.columns) == list(p.columns)
    raw = p.to_bytes()
    with pytest.raises(CorruptStateError):
        fastdrift.Profile.from_bytes(raw[:-5])
    with pytest.raises(CorruptStateError):
        fastdrift.Profile.from_bytes(fastdrift.Histogram([0.0]).to_bytes())


def test_profile_merge_mismatch(tables):
    ref_t, _ = tables
    a = fastdrift.profile(ref_t, columns=["income"])
    b = fastdrift.profile(ref_t, columns=["age"])
    with pytest.raises(IncompatibleSketchError):
        a.merge(b)


def test_profile_missing_column_in_batch(tables):
    ref_t, cur_t = tables
    ref = fastdrift.profile(ref_t)
    with pytest.raises(SchemaError, match="income"):
        ref.empty_like().update(cur_t.drop_columns(["income"]))


def test_demo_drift_is_found(tables):
    ref_t, cur_t = tables
    ref = fastdrift.profile(ref_t)
    cur = fastdrift.profile(cur_t, reference=ref)
    rows = {r.column: r for r in fastdrift.compare_profiles(ref, cur)}
    # injected drift: exactly two features, plus the prediction that depends on income
    for col in ("income", "country", "score"):
        assert rows[col].psi > 0.1, (col, rows[col].psi)
    assert "MX" in cur["country"].categorical.categories and "MX" not in ref["country"].categorical.categories
    # no drift injected
    for col in ("session_length", "age", "tenure_days", "clicks", "device", "is_returning"):
        assert rows[col].psi < 0.02, (col, rows[col].psi)
    assert abs(rows["age"].missing_cur - rows["age"].missing_ref) < 0.01


def test_demo_command_runs(capsys, tmp_path, monkeypatch):
    from fastdrift.cli import main
    monkeypatch.chdir(tmp_path)  # the demo writes fastdrift-demo.html into the working directory
    assert main(["demo", "--rows", "20000"]) == 0
    out = capsys.readouterr().out
    assert "income" in out and "PSI" in out and "drifted" in out


def test_column_profile_empty_matches_empty_like(tables):
    ref = fastdrift.profile(tables[0])
    for name, cp in ref.columns.items():
        if cp.kind == "numeric":
            built = fastdrift.ColumnProfile.empty(name, "numeric", edges=cp.histogram.edges,
                                                  compression=cp.tdigest.compression)
        else:
            built = fastdrift.ColumnProfile.empty(name, "categorical", key_type=cp.categorical.key_type,
                                                  max_categories=cp.categorical.max_categories)
        assert [s.to_bytes() for s in built.sketches()] == [s.to_bytes() for s in cp.empty_like().sketches()]
    with pytest.raises(InvalidInputError, match="needs histogram edges"):
        fastdrift.ColumnProfile.empty("x", "numeric")
    with pytest.raises(InvalidInputError, match="kind must be"):
        fastdrift.ColumnProfile.empty("x", "text")


@pytest.mark.parametrize("bad", ["abc", {"x": [1.0]}, [[1.0, 2.0]], 42])
def test_profile_rejects_non_arrow_data(bad):
    with pytest.raises(InvalidInputError):
        fastdrift.profile(bad)
