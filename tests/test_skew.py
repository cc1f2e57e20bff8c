"""fastdrift.skew and `fastdrift skew` against a plain-Python dict join of the same rows, read back by pyarrow."""
import collections
import json
import math
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import fastdrift
from fastdrift.cli import EXIT_INPUT, EXIT_SCHEMA, EXIT_USAGE, main
from fastdrift.serving_skew import DEFAULT_ATOL, DEFAULT_RTOL, QUANTILES, SkewResult

N = 3_000
WORKERS = 2


def _tables(seed: int, string_keys: bool):
    """SERVING and OFFLINE with injected mismatches, nulls, NaN, +-inf, duplicate and one-sided keys."""
    rng = np.random.default_rng(seed)
    keys = rng.permutation(N + 400)
    k_s, k_o = keys[:N].copy(), keys[400:].copy()           # 400 keys on each side only
    k_s[100:130] = k_s[0:30]                                  # 30 keys twice in serving
    k_o[200:210] = k_o[210:220]                               # 10 keys twice offline
    k_o[300:303] = k_o[303]                                   # one key four times
    x = rng.normal(0, 10, N + 400)
    cat = np.array(["red", "green", "blue", "amber"])[rng.integers(0, 4, N + 400)]
    n = rng.integers(0, 1000, N + 400)

    def side(k, offline):
        xs = x[k].copy()
        cs = cat[k].astype(object)
        ns = n[k].astype(object)
        if offline:
            bad = rng.random(len(k)) < 0.05
            xs[bad] += rng.normal(0, 1, bad.sum())            # beyond tolerance
            xs[rng.random(len(k)) < 0.05] *= 1 + 1e-7        # within tolerance
            cs[rng.random(len(k)) < 0.03] = "violet"
            ns[rng.random(len(k)) < 0.02] = 7
        xs = xs.astype(object)
        for vals, fill in ((xs, [None, math.nan, math.inf, -math.inf]), (cs, [None]), (ns, [None])):
            for f in fill:
                vals[rng.random(len(k)) < 0.02] = f
        # every special pairing occurs: both NaN, both inf, both null
        if not offline:
            xs[500:503] = [math.nan, math.inf, None]
        else:
            pos = {v: i for i, v in enumerate(k)}
            for j, v in zip(k_s[500:503], [math.nan, math.inf, None]):
                if j in pos:
                    xs[pos[j]] = v
        key = pa.array([f"r{v:06d}" for v in k]) if string_keys else pa.array(k, pa.int64())
        return pa.table({"request_id": key, "x": pa.array(list(xs), pa.float64()),
                         "country": pa.array(list(cs), pa.string()), "n": pa.array(list(ns), pa.int64()),
                         "serving_only": pa.array(np.arange(len(k)) if not offline else np.zeros(len(k)))}
                        ).drop_columns([] if not offline else ["serving_only"])
    return side(k_s, False), side(k_o, True)


def _write(t: pa.Table, path, fmt):
    if fmt == "parquet":
        pq.write_table(t, path, row_group_size=700)
    elif fmt == "ipc":
        feather.write_feather(t, path, chunksize=900)
    else:
        pacsv.write_csv(t, path)


def _read(path, fmt) -> pa.Table:
    return {"parquet": pq.read_table, "ipc": feather.read_table, "csv": pacsv.read_csv}[fmt](path)


def _equal(a, b, numeric):
    if a is None or b is None:
        return a is None and b is None
    if not numeric:
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= DEFAULT_ATOL + DEFAULT_RTOL * abs(b)


def _oracle(s: pa.Table, o: pa.Table, key: str, cols):
    """The expected report from a dict join of the rows as pyarrow reads them back."""
    rs, ro = s.to_pylist(), o.to_pylist()
    cs = collections.Counter(r[key] for r in rs if r[key] is not None)
    co = collections.Counter(r[key] for r in ro if r[key] is not None)
    by_s = {r[key]: r for r in rs}
    by_o = {r[key]: r for r in ro}
    both = [k for k in cs if cs[k] == 1 and co.get(k) == 1]
    out = {"compared": len(both), "keys_serving": len(cs), "keys_offline": len(co),
           "serving_only_keys": sum(1 for k in cs if k not in co),
           "offline_only_keys": sum(1 for k in co if k not in cs),
           "serving_only_rows": sum(c for k, c in cs.items() if k not in co),
           "offline_only_rows": sum(c for k, c in co.items() if k not in cs),
           "duplicate_keys_serving": sum(1 for c in cs.values() if c > 1),
           "duplicate_keys_offline": sum(1 for c in co.values() if c > 1),
           "duplicate_rows_serving": sum(c for c in cs.values() if c > 1),
           "duplicate_rows_offline": sum(c for c in co.values() if c > 1),
           "null_keys_serving": sum(1 for r in rs if r[key] is None),
           "null_keys_offline": sum(1 for r in ro if r[key] is None), "features": {}}
    for c in cols:
        numeric = pa.types.is_floating(s.schema.field(c).type) or pa.types.is_integer(s.schema.field(c).type)
        mism = [k for k in both if not _equal(by_s[k][c], by_o[k][c], numeric)]
        f = {"mismatches": len(mism),
             "null_mismatches": sum(1 for k in mism if (by_s[k][c] is None) != (by_o[k][c] is None))}
        if numeric:
            d = [by_s[k][c] - by_o[k][c] for k in both if by_s[k][c] is not None and by_o[k][c] is not None
                 and math.isfinite(by_s[k][c]) and math.isfinite(by_o[k][c])]
            f["diff_count"] = len(d)
            f["quantiles"] = list(np.quantile(np.array(d, dtype=float), QUANTILES))
            f["min"], f["max"] = min(d), max(d)

            def score(k):
                a, b = by_s[k][c], by_o[k][c]
                fin = a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
                return abs(a - b) if fin else math.inf
            worst = sorted(mism, key=lambda k: (-score(k), k))[:10]
        else:
            pairs = collections.Counter((by_s[k][c], by_o[k][c]) for k in mism)
            f["pairs"] = sorted(((p, n) for p, n in pairs.items()), key=lambda pn: (-pn[1], str(pn[0])))[:10]
            worst = sorted(mism)[:10]
        f["examples"] = [(k, by_s[k][c], by_o[k][c]) for k in worst]
        out["features"][c] = f
    return out


def _same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _check(r: SkewResult, exp):
    for k, v in exp.items():
        if k != "features":
            assert getattr(r, k) == v, k
    assert [f.column for f in r.features] == list(exp["features"])
    for f in r.features:
        e = exp["features"][f.column]
        assert (f.mismatches, f.null_mismatches) == (e["mismatches"], e["null_mismatches"]), f.column
        assert f.compared == exp["compared"]
        assert f.mismatches > 0
        got = [(x["key"], x["serving"], x["offline"]) for x in f.examples]
        assert len(got) == len(e["examples"]) and all(map(_same, sum(map(list, got), []),
                                                       sum(map(list, e["examples"]), []))), f.column
        if f.kind == "numeric":
            assert f.diff_exact and f.diff_count == e["diff_count"]
            assert [f.diff_quantiles[f"p{round(q * 100):02d}"] for q in QUANTILES] == e["quantiles"]
            assert (f.diff_min, f.diff_max) == (e["min"], e["max"])
        else:
            assert [((p["serving"], p["offline"]), p["count"]) for p in f.top_pairs] == e["pairs"]


@pytest.fixture(scope="module", params=[False, True], ids=["int-keys", "string-keys"])
def tables(request):
    return _tables(5, request.param)


@pytest.mark.parametrize("fmt", ["parquet", "ipc", "csv"])
def test_skew_matches_a_dict_join_in_memory_and_spilled(tables, fmt, tmp_path, monkeypatch):
    s, o = tables
    ext = {"parquet": "parquet", "ipc": "arrow", "csv": "csv"}[fmt]
    ps, po = tmp_path / f"s.{ext}", tmp_path / f"o.{ext}"
    _write(s, ps, fmt)
    _write(o, po, fmt)
    s, o = _read(ps, fmt), _read(po, fmt)  # the oracle sees what a reader sees (CSV: inferred types)
    exp = _oracle(s, o, "request_id", ["x", "country", "n"])
    assert exp["duplicate_keys_serving"] == 30 and exp["duplicate_keys_offline"] == 11
    r = fastdrift.skew(ps, po, key="request_id", workers=WORKERS)
    assert r.buckets == 1
    _check(r, exp)
    assert r.serving_only_columns == ("serving_only",) and r.exit_status == 2
    # a tiny budget forces the spill path: the same report, bucket by bucket within the bound
    budget = 60_000
    sp = fastdrift.skew(ps, po, key="request_id", workers=WORKERS, memory_budget=budget)
    assert sp.buckets > 4
    assert 0 < sp.max_bucket_bytes <= budget // (5 * WORKERS)
    _check(sp, exp)
    # in memory, in many small buckets
    monkeypatch.setattr(sys.modules["fastdrift.serving_skew"], "MEMORY_BUCKET", 10_000)
    mb = fastdrift.skew(ps, po, key="request_id", workers=WORKERS)
    assert mb.buckets > 4 and mb.max_bucket_bytes <= 10_000
    _check(mb, exp)
    a, b, c = r.to_json(), sp.to_json(), mb.to_json()
    for d in (a, b, c):
        for k in ("buckets", "max_bucket_bytes", "memory_budget"):
            d.pop(k)
    assert a == b == c


def test_special_values_and_tolerance(tmp_path):
    nan, inf = math.nan, math.inf
    a = [None, None, nan, nan, inf, inf, -inf, 1.0, 1.0, 1e6, 0.0, 5.0]
    b = [None, 1.0, nan, 1.0, inf, -inf, -inf, 1.0 + 1e-6, 1.1, 1e6 + 5.0, 1e-9, inf]
    eq = [True, False, True, False, True, False, True, True, False, True, True, False]
    s = pa.table({"k": list(range(len(a))), "v": pa.array(a, pa.float64()), "i": list(range(len(a)))})
    o = pa.table({"k": list(range(len(a))), "v": pa.array(b, pa.float64()), "i": list(range(len(a)))})
    pq.write_table(s, tmp_path / "s.parquet")
    pq.write_table(o, tmp_path / "o.parquet")
    r = fastdrift.skew(tmp_path / "s.parquet", tmp_path / "o.parquet", key="k")
    v = {f.column: f for f in r.features}["v"]
    assert v.mismatches == eq.count(False) and v.null_mismatches == 1
    assert sorted(e["key"] for e in v.examples) == [i for i, e in enumerate(eq) if not e]
    assert v.diff_count == 4 and (v.diff_min, v.diff_max) == (1e6 - (1e6 + 5.0), 0.0 - 1e-9)
    assert {f.column: f for f in r.features}["i"].mismatches == 0
    # a looser tolerance turns 1.0 vs 1.1 into a match
    r2 = fastdrift.skew(tmp_path / "s.parquet", tmp_path / "o.parquet", key="k", rtol=0.2)
    assert {f.column: f for f in r2.features}["v"].mismatches == eq.count(False) - 1


def test_redaction_of_examples_and_pairs(tmp_path):
    s = pa.table({"k": ["a", "b", "c"], "email": ["x@y", "p@q", "m@n"], "tier": ["gold", "gold", "free"]})
    o = pa.table({"k": ["a", "b", "c"], "email": ["x@z", "p@q", "m@o"], "tier": ["free", "gold", "gold"]})
    feather.write_feather(s, tmp_path / "s.arrow")
    feather.write_feather(o, tmp_path / "o.arrow")
    r = fastdrift.skew(tmp_path / "s.arrow", tmp_path / "o.arrow", key="k", drop=["email"], hash=["k", "tier"],
                       salt="s")
    f = {f.column: f for f in r.features}
    assert f["email"].mismatches == 2 and f["tier"].mismatches == 2
    assert all(set(e) == {"key"} for e in f["email"].examples) and f["email"].top_pairs == ()
    text = json.dumps(r.to_json()) + r.table()
    for secret in ("x@y", "x@z", "m@n", "gold", "free"):
        assert secret not in text
    assert all(len(e["key"]) == 16 and len(e["serving"]) == 16 for e in f["tier"].examples)


def test_bad_inputs(tmp_path):
    pq.write_table(pa.table({"k": [1, 2], "v": [1.0, 2.0], "l": [[1], [2]]}), tmp_path / "s.parquet")
    pq.write_table(pa.table({"k": ["1", "2"], "v": [1.0, 2.0]}), tmp_path / "str.parquet")
    pq.write_table(pa.table({"id": [1, 2], "v": [1.0, 2.0], "l": [[1], [3]]}), tmp_path / "nokey.parquet")
    pq.write_table(pa.table({"k": [2, 3], "v": ["a", "b"], "l": [[1], [3]]}), tmp_path / "vstr.parquet")
    with pytest.raises(fastdrift.InvalidInputError, match="key column 'k' is int64 in SERVING and string"):
        fastdrift.skew(tmp_path / "s.parquet", tmp_path / "str.parquet", key="k")
    with pytest.raises(fastdrift.InvalidInputError, match="key column 'k' not in OFFLINE"):
        fastdrift.skew(tmp_path / "s.parquet", tmp_path / "nokey.parquet", key="k")
    with pytest.raises(fastdrift.SchemaError, match="column 'w' not in SERVING"):
        fastdrift.skew(tmp_path / "s.parquet", tmp_path / "s.parquet", key="k", columns=["w"])
    r = fastdrift.skew(tmp_path / "s.parquet", tmp_path / "vstr.parquet", key="k")
    assert set(r.skipped) == {"v", "l"} and "nested" in r.skipped["l"] and "cannot be compared" in r.skipped["v"]
    assert r.compared == 1 and r.features == () and r.exit_status == 0


def test_cli_exit_codes_and_json(tmp_path, capsys):
    s, o = _tables(9, False)
    _write(s, tmp_path / "s.parquet", "parquet")
    _write(o, tmp_path / "o.parquet", "parquet")
    args = [str(tmp_path / "s.parquet"), str(tmp_path / "o.parquet"), "--key", "request_id", "--workers", "2"]
    assert main(["skew", *args, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    r = fastdrift.skew(tmp_path / "s.parquet", tmp_path / "o.parquet", key="request_id")
    assert doc == json.loads(json.dumps(r.to_json()))
    assert doc["exit_status"] == 2 and {f["column"] for f in doc["features"]} == {"x", "country", "n"}
    rates = {f["column"]: f["mismatch_rate"] for f in doc["features"]}
    assert rates["n"] == pytest.approx(sum(f["mismatches"] for f in doc["features"] if f["column"] == "n")
                                       / doc["compared"])
    worst = max(rates.values())
    assert main(["skew", *args, "--max-mismatch-rate", str(worst)]) == 0
    assert "OK: no skew beyond the thresholds" in capsys.readouterr().out
    assert main(["skew", *args, "--max-mismatch-rate", str(worst), "--max-unmatched-rate", "0.05"]) == 2
    assert "missing from the other side" in capsys.readouterr().out
    assert main(["skew", *args, "--columns", "n", "--max-mismatch-rate", "1", "--memory-budget", "40K"]) == 0
    assert main(["skew", *args[:2], "--key", "nope"]) == EXIT_INPUT
    assert main(["skew", *args, "--columns", "nope"]) == EXIT_SCHEMA
    assert main(["skew", *args[:2]]) == EXIT_USAGE
    assert main(["skew", *args, "--memory-budget", "lots"]) == EXIT_USAGE
    assert main(["skew", str(tmp_path / "missing.parquet"), *args[1:]]) == EXIT_INPUT
    capsys.readouterr()


def test_key_hash_depends_on_the_value_only():
    # the spill bucket of a key must not depend on the batch it arrives in, or its offset there
    h = sys.modules["fastdrift.serving_skew"]._key_hash
    strs = pa.array([f"k{i:x}" * (i % 5 + 1) for i in range(40_000)] + ["", "é"])
    whole = h(strs, 3)
    assert (np.concatenate([h(strs.slice(i, 7), 3) for i in range(0, len(strs), 7)]) == whole).all()
    assert len(np.unique(whole)) == len(strs) and not (h(strs, 4) == whole).all()
    ints = pa.array(np.arange(-5, 40_000, dtype=np.int64))
    assert (h(ints.slice(100), 0) == h(ints, 0)[100:]).all()
    assert (h(ints.cast(pa.int32()), 0) == h(ints, 0)).all()
