"""The bad-input matrix: every column a production log can hold, through every entry point.

Each case is a file (Parquet, Arrow IPC, CSV) holding a well-behaved numeric and string column
next to the case's column.  ``fastdrift profile`` and ``fastdrift compare`` answer with the
documented exit status and, for a column they do not count, one stderr line naming it; the
other columns' counts are exact (oracles: numpy over the values written).  The same tables go
through ``fastdrift.profile()`` and the Monitor.
"""
import collections
import datetime
import decimal
import json
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import fastdrift
from fastdrift.cli import EXIT_INPUT, main
from fastdrift.profilefile import ProfileFile

N = 600
LEVELS = np.arange(1, 10) / 10


def _read(path):
    with open(path, "rb") as fh:
        return ProfileFile.from_bytes(fh.read())


def _good(rng):
    x = rng.normal(size=N).round(3)
    s = rng.choice(["a", "b", "c", "d"], size=N)
    return x, s


def _epoch_seconds(dt64) -> np.ndarray:
    """Oracle of the temporal convention: float seconds since the epoch, from the integer in the
    column's own unit (numpy's arithmetic: the integer as a double, then divided by its unit)."""
    unit = np.datetime_data(dt64.dtype)[0]
    raw = dt64.astype(np.int64).astype(np.float64)
    return raw * 86400 if unit == "D" else raw / {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]


# name -> (formats, make(rng) -> (arrow column, oracle float64 values or None when not counted,
#                                   substring of the skip reason))
def _cases():
    days = np.arange(N) % 97
    dates = np.datetime64("2024-01-01") + days.astype("timedelta64[D]")
    stamps = np.datetime64("2024-01-01T00:00:00", "ns") + (np.arange(N) * 3_600_123_456_789).astype("timedelta64[ns]")
    big = (np.arange(N, dtype=np.int64) * 7_919 + 2**60) | 1  # odd: not doubles
    ubig = np.arange(N, dtype=np.uint64) * np.uint64(1_000_003) + np.uint64(2**63 + 1)
    return {
        "int64_beyond_2_53": (("parquet", "arrow", "csv"), lambda: (pa.array(big), big.astype(np.float64), None)),
        "uint64_beyond_2_63": (("parquet", "arrow"), lambda: (pa.array(ubig), ubig.astype(np.float64), None)),
        "all_null_double": (("parquet", "arrow"), lambda: (pa.nulls(N, pa.float64()), np.full(N, np.nan), None)),
        "all_null_csv": (("csv",), lambda: (pa.nulls(N, pa.float64()), np.full(N, np.nan), None)),
        "all_nan": (("parquet", "arrow", "csv"), lambda: (pa.array(np.full(N, np.nan)), np.full(N, np.nan), None)),
        "null_type": (("parquet", "arrow"), lambda: (pa.nulls(N), np.full(N, np.nan), None)),
        "decimal": (("parquet", "arrow"), lambda: (
            pa.array([decimal.Decimal(int(v)).scaleb(-2) for v in days * 37], pa.decimal128(12, 2)),
            (days * 37) / 100, None)),
        "date32": (("parquet", "arrow", "csv"), lambda: (pa.array(dates), _epoch_seconds(dates), None)),
        "timestamp_tz": (("parquet", "arrow"), lambda: (
            pa.array(stamps.astype(np.int64), pa.timestamp("ns", tz="Europe/Paris")), _epoch_seconds(stamps), None)),
        "timestamp_ms": (("parquet", "arrow"), lambda: (
            pa.array(stamps.astype("datetime64[ms]")), _epoch_seconds(stamps.astype("datetime64[ms]")), None)),
        "float16": (("parquet", "arrow"), lambda: (
            pa.array((days / 8).astype(np.float16)), (days / 8).astype(np.float16).astype(np.float64), None)),
        "struct": (("parquet", "arrow"), lambda: (pa.array([{"f": int(v)} for v in days]), None, "nested type")),
        "list": (("parquet", "arrow"), lambda: (pa.array([[int(v)] for v in days]), None, "nested type")),
        "non_utf8_csv": (("csv",), lambda: (pa.array([b"\xff\xfe" + bytes([65 + v % 3]) for v in days]), None,
                                            "not UTF-8")),
    }


CASES = _cases()
MATRIX = [(name, fmt) for name, (fmts, _) in CASES.items() for fmt in fmts]


def _write(path, table, fmt):
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=N // 3)
    elif fmt == "arrow":
        feather.write_feather(table, path)
    else:  # CSV written by hand: raw bytes stay raw, an all-null column is an empty field
        cols = table.columns
        lines = [",".join(table.column_names).encode()]
        for i in range(table.num_rows):
            cells = []
            for c in cols:
                v = c[i].as_py()
                if v is None:
                    cells.append(b"")
                elif isinstance(v, bytes):
                    cells.append(v)
                elif isinstance(v, float) and math.isnan(v):
                    cells.append(b"nan")
                else:
                    cells.append(str(v).encode())
            lines.append(b",".join(cells))
        with open(path, "wb") as fh:
            fh.write(b"\n".join(lines) + b"\n")


def _table(name, rng):
    x, s = _good(rng)
    col, oracle, why = CASES[name][1]()
    return pa.table({"x": x, "s": s, name: col}), x, s, oracle, why


def _check_good(prof, x, s):
    """The well-behaved columns' counts, exact against numpy."""
    h = prof["x"].histogram
    np.testing.assert_array_equal(h.edges, np.unique(np.quantile(x, LEVELS)))
    want = np.bincount(np.searchsorted(h.edges, x, side="right"), minlength=h.edges.size + 1)
    np.testing.assert_array_equal(h.counts, want)
    assert prof["x"].moments.n == N
    assert prof["s"].categorical.to_dict() == dict(collections.Counter(s.tolist()))


def _check_case(cp, oracle):
    """The case column, counted as float64 numbers (NaN for a missing value), against numpy."""
    finite = oracle[np.isfinite(oracle)]
    h, m = cp.histogram, cp.moments
    assert cp.kind == "numeric" and cp.count == N
    assert m.n == finite.size and m.null_count + m.nan_count == N - finite.size
    if finite.size:
        np.testing.assert_array_equal(h.edges, np.unique(np.quantile(finite, LEVELS)))
        assert m.min == finite.min() and m.max == finite.max()
        want = np.bincount(np.searchsorted(h.edges, finite, side="right"), minlength=h.edges.size + 1)
        np.testing.assert_array_equal(h.counts, want)
    else:
        assert h.counts.sum() == 0 and h.null_count + h.nan_count == N


@pytest.mark.parametrize("name,fmt", MATRIX)
def test_cli_profile_and_compare(tmp_path, capsys, name, fmt):
    rng = np.random.default_rng(len(name))
    table, x, s, oracle, why = _table(name, rng)
    path = str(tmp_path / f"data.{fmt}")
    _write(path, table, fmt)
    out = str(tmp_path / "ref.fdp")
    assert main(["profile", path, "-o", out, "-q"]) == 0
    err = capsys.readouterr().err.strip()
    prof = _read(out).profile
    _check_good(prof, x, s)
    assert prof.rows == N
    if oracle is not None:
        assert err == ""
        _check_case(prof[name], oracle)
    else:
        assert name not in prof.columns and prof.skipped == [name]
        assert len(err.splitlines()) == 1 and f"column {name!r} not counted" in err and why in err
    # compare: the file against itself, data on both sides and the profile against the data
    for ref in (path, out):
        assert main(["compare", ref, path, "-q", "--format", "json"]) == 0
        io = capsys.readouterr()
        doc = json.loads(io.out)
        feats = {f["column"]: f for f in doc["features"]}
        assert set(feats) == {"x", "s"} | ({name} if oracle is not None else set())
        assert feats["x"]["psi"] == 0.0 and feats["s"]["psi"] == 0.0
        if oracle is None:
            assert [d["column"] for d in doc["skipped_columns"]] == [name] and why in doc["skipped_columns"][0]["reason"]
        else:
            assert doc["skipped_columns"] == []
            f = feats[name]
            if not np.isfinite(oracle).any():  # nothing to compare: PSI undefined, missingness reported
                assert f["psi"] == "NaN" and f["n_ref"] == 0 and f["missing_ref"] == 1.0 == f["missing_cur"]
            else:
                assert f["psi"] == 0.0 and f["n_ref"] == f["n_cur"] == np.isfinite(oracle).sum()


def test_cli_table_and_html_name_skipped_columns(tmp_path, capsys):
    rng = np.random.default_rng(3)
    table, *_ = _table("struct", rng)
    path = str(tmp_path / "d.parquet")
    _write(path, table, "parquet")
    assert main(["compare", path, path, "-q"]) == 0
    text = capsys.readouterr().out
    assert "Columns not counted\n  struct: nested type struct<f: int64>" in text
    html = str(tmp_path / "r.html")
    assert main(["compare", path, path, "-q", "--format", "html", "-o", html]) == 0
    with open(html, encoding="utf-8") as fh:
        page = fh.read()
    assert "<section id='skipped'><h2>Columns not counted</h2>" in page and "select or flatten" in page


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_file_with_no_countable_column_is_unusable_input(tmp_path, capsys, fmt):
    days = np.arange(N) % 5
    if fmt == "csv":
        table = pa.table({"b": pa.array([b"\xff" + bytes([65 + int(v)]) for v in days])})
    else:
        table = pa.table({"st": pa.array([{"f": int(v)} for v in days]), "l": pa.array([[int(v)] for v in days])})
    path = str(tmp_path / f"d.{fmt}")
    _write(path, table, fmt)
    assert main(["profile", path, "-o", str(tmp_path / "p.fdp"), "-q"]) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    # one line per column not counted, then the error naming them
    assert len(err) == table.num_columns + 1
    assert err[-1].startswith("fastdrift profile: error: ") and "no column to profile" in err[-1]
    assert all(repr(n) in err[-1] for n in table.column_names)
    assert not os.path.exists(tmp_path / "p.fdp")
    assert main(["compare", path, path, "-q"]) == EXIT_INPUT


def test_all_missing_current_column_is_counted_not_rejected(tmp_path, capsys):
    """A reference column with values, all null (CSV: Arrow null type) or all NaN in the current data."""
    rng = np.random.default_rng(5)
    x, s = _good(rng)
    y = rng.normal(size=N)
    ref = str(tmp_path / "ref.parquet")
    pq.write_table(pa.table({"x": x, "s": s, "y": y}), ref)
    for fmt, col in (("csv", pa.nulls(N, pa.float64())), ("parquet", pa.array(np.full(N, np.nan))),
                     ("parquet", pa.nulls(N, pa.float64()))):
        cur = str(tmp_path / f"cur.{fmt}")
        _write(cur, pa.table({"x": x, "s": s, "y": col}), fmt)
        prof = str(tmp_path / "cur.fdp")
        assert main(["profile", cur, "--reference", _profile(ref, tmp_path), "-o", prof, "-q"]) == 0
        capsys.readouterr()
        p = _read(prof).profile
        _check_good_current(p, x, s)
        assert p["y"].count == N and p["y"].missing_count == N and p["y"].histogram.counts.sum() == 0
        code = main(["compare", ref, cur, "-q", "--format", "json"])
        doc = json.loads(capsys.readouterr().out)
        y_row = next(f for f in doc["features"] if f["column"] == "y")
        assert y_row["psi"] == "NaN" and y_row["n_cur"] == 0 and y_row["missing_cur"] == 1.0
        assert doc["schema_changes"] == []  # a CSV column without a value reads as Arrow null: not a retype
        assert code in (1, 2)  # the default missingness rule fires on a column gone missing


def _profile(path, tmp_path):
    out = str(tmp_path / "ref.fdp")
    if not os.path.exists(out):
        assert main(["profile", path, "-o", out, "-q"]) == 0
    return out


def _check_good_current(prof, x, s):
    assert prof["x"].moments.n == N and prof["x"].histogram.counts.sum() == N
    assert prof["s"].categorical.to_dict() == dict(collections.Counter(s.tolist()))


# -- the same inputs through the Python entry points ----------------------------------------------------

@pytest.mark.parametrize("name", [n for n, (_, make) in CASES.items() if n != "non_utf8_csv"])
def test_profile_function_counts_every_case_as_the_cli(name):
    rng = np.random.default_rng(len(name))
    table, x, s, oracle, _ = _table(name, rng)
    prof = fastdrift.profile(table)
    _check_good(prof, x, s)
    if oracle is None:
        assert prof.skipped == [name]
    else:
        _check_case(prof[name], oracle)
        cur = fastdrift.profile(table, reference=prof)
        assert cur[name].histogram == prof[name].histogram


def test_monitor_counts_all_missing_and_converted_columns():
    rng = np.random.default_rng(9)
    x, s = _good(rng)
    d = np.datetime64("2024-01-01") + (np.arange(N) % 30).astype("timedelta64[D]")
    ref = pa.table({"x": x, "s": s, "gone": pa.nulls(N, pa.float64()), "nan": np.full(N, np.nan),
                    "day": pa.array(d), "big": pa.array(np.arange(N, dtype=np.int64) + 2**62)})
    m = fastdrift.Monitor(ref, window={"by": "rows", "size": N})
    m.update(ref)
    (rep,) = m.reports()
    assert set(rep.features) == {"x", "s", "gone", "nan", "day", "big"}
    for n in ("x", "s", "day", "big"):
        assert rep.features[n].value == 0.0
    for n in ("gone", "nan"):
        assert math.isnan(rep.features[n].value) and rep.features[n].missing_cur == 1.0


def test_big_integers_round_like_the_kernels_in_every_path():
    """One policy: int64/uint64 count as their nearest float64 (lossy beyond 2**53), never an error."""
    v = np.array([2**53 + 1, 2**62 + 1, -(2**63), 2**63 - 1], dtype=np.int64)
    m = fastdrift.Moments().update(v)
    assert m.min == float(v.min()) and m.max == float(v.max())
    from fastdrift.adapters.arrow import float64_values
    np.testing.assert_array_equal(float64_values(pa.array(v)), v.astype(np.float64))
    u = np.array([2**64 - 1, 2**63 + 3], dtype=np.uint64)
    np.testing.assert_array_equal(float64_values(pa.array(u)), u.astype(np.float64))


# -- polars, views, byte order, pandas NaN --------------------------------------------------------------

def test_string_views_count_as_categories():
    values = ["short", "a string longer than twelve bytes", None, "short", "", "a string longer than twelve bytes"]
    want = {"short": 2, "a string longer than twelve bytes": 2, "": 1}
    for t in (pa.string_view(), pa.large_string(), pa.string()):
        arr = pa.array(values, t)
        c = fastdrift.Categorical().update(arr)
        assert c.to_dict() == want and c.null_count == 1 and c.key_type == "str"
        # a slice keeps its offset; a dictionary of views is counted on its indices
        assert fastdrift.Categorical().update(arr.slice(1, 4)).to_dict() == {
            "a string longer than twelve bytes": 1, "short": 1, "": 1}
        assert fastdrift.Categorical().update(arr.dictionary_encode()).to_dict() == want
        chunked = pa.chunked_array([arr.slice(0, 3), arr.slice(3)])
        assert fastdrift.Categorical().update(chunked).to_dict() == want
    prof = fastdrift.profile(pa.table({"v": pa.array(values, pa.string_view())}))
    assert prof["v"].kind == "categorical" and prof["v"].categorical.to_dict() == want
    cur = fastdrift.profile(pa.table({"v": pa.array(values, pa.string())}), reference=prof)
    assert cur["v"].categorical == prof["v"].categorical


def test_polars_frames_and_series():
    import polars as pl  # the test extra installs it
    rng = np.random.default_rng(11)
    s = rng.choice(["DE", "a value longer than twelve bytes", "US"], size=N).tolist()
    s[::7] = [None] * len(s[::7])
    x = rng.normal(size=N)
    df = pl.DataFrame({"s": s, "x": x, "c": pl.Series(s, dtype=pl.Categorical)})
    assert pa.table(df).schema.field("s").type == pa.string_view()  # what polars hands over
    prof = fastdrift.profile(df)
    assert prof.skipped == [] and list(prof.columns) == ["s", "x", "c"]
    want = collections.Counter(v for v in s if v is not None)
    for n in ("s", "c"):
        assert prof[n].kind == "categorical" and prof[n].categorical.to_dict() == dict(want)
        assert prof[n].categorical.null_count == s.count(None)
    assert prof["x"].moments.n == N
    c = fastdrift.Categorical().update(pl.Series(s))
    assert c.to_dict() == dict(want) and c.null_count == s.count(None)
    assert fastdrift.profile(df, reference=prof)["s"].categorical == prof["s"].categorical


def test_big_endian_numpy_is_byteswapped():
    """Arrow is little-endian: a big-endian array is counted as its native-order copy."""
    floats = np.array([3.5, -1.0, np.nan, 2.0, 1e30])
    ints = np.array([3, -1, 2, 7, 2])
    for dt in (">f8", ">f4", ">i8", ">i4", ">u2"):
        be = (floats if dt[1] == "f" else np.abs(ints) if dt[1] == "u" else ints).astype(dt)
        native = be.astype(be.dtype.newbyteorder("="))
        assert not be.dtype.isnative and native.dtype.isnative
        assert fastdrift.Moments().update(be) == fastdrift.Moments().update(native)
        assert fastdrift.Histogram([0.0, 2.5]).update(be) == fastdrift.Histogram([0.0, 2.5]).update(native)
        assert fastdrift.TDigest().update(be).quantile(0.5) == fastdrift.TDigest().update(native).quantile(0.5)
        if dt[1] != "f":
            assert fastdrift.Categorical().update(be).to_dict() == fastdrift.Categorical().update(native).to_dict()


def test_nan_is_nan_from_pandas_as_from_numpy():
    """NaN in a float column is a NaN value from every entry point; null is null."""
    import pandas as pd  # the spark extra installs it
    v = np.array([1.0, np.nan, 3.0, np.nan])
    from_numpy = fastdrift.Moments().update(v)
    assert (from_numpy.nan_count, from_numpy.null_count) == (2, 0)
    assert fastdrift.Moments().update(pd.Series(v)) == from_numpy
    df = pd.DataFrame({"f": v, "o": ["a", None, np.nan, "a"], "n": pd.array([1.0, None, 2.0, 3.0], dtype="Float64")})
    prof = fastdrift.profile(df)
    assert (prof["f"].moments.nan_count, prof["f"].moments.null_count) == (2, 0)
    assert prof["f"] == fastdrift.profile(pa.table({"f": v}))["f"]
    assert prof["o"].categorical.to_dict() == {"a": 2} and prof["o"].categorical.null_count == 2
    assert (prof["n"].moments.nan_count, prof["n"].moments.null_count) == (0, 1)  # pd.NA is null


def test_observe_takes_datetime_and_decimal_values_of_converted_columns():
    """A request's datetime / date / Decimal value of a temporal or decimal reference column is counted,
    as the same values in an Arrow batch are (never a rejected row)."""
    t0 = np.datetime64("2024-01-01T00:00:00", "us")
    hours = np.arange(N) % 48
    ref = pa.table({"x": np.arange(N, dtype=np.float64),
                    "t": pa.array(t0 + hours.astype("timedelta64[h]"), pa.timestamp("us", tz="UTC")),
                    "d": pa.array([decimal.Decimal(int(v)).scaleb(-1) for v in hours], pa.decimal128(6, 1)),
                    "day": pa.array((t0 + hours.astype("timedelta64[h]")).astype("datetime64[D]"))})
    rows = [{"x": float(i), "t": datetime.datetime(2024, 1, 1, i % 24, tzinfo=datetime.timezone.utc),
             "d": decimal.Decimal(i % 30).scaleb(-1), "day": datetime.date(2024, 1, 1 + i % 2)} for i in range(40)]
    observed = fastdrift.Monitor(ref, window={"by": "rows", "size": 40})
    for r in rows:
        observed.observe(r)
    observed.flush()
    batch = pa.table({n: pa.array([r[n] for r in rows], ref.schema.field(n).type) for n in ref.column_names})
    updated = fastdrift.Monitor(ref, window={"by": "rows", "size": 40})
    updated.update(batch)
    (a,), (b,) = observed.reports(), updated.reports()
    assert a.rejected == 0 and a.rows == 40
    for n in ref.column_names:
        assert a.features[n].n_cur == 40 and a.features[n].value == b.features[n].value
        assert a.features[n].contributions == b.features[n].contributions


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_file_without_rows_is_profiled(tmp_path, capsys, fmt):
    """Every column empty: a profile of 0 rows (the counts are the facts), not an error."""
    path = str(tmp_path / f"d.{fmt}")
    _write(path, pa.table({"x": pa.array([], pa.float64()), "s": pa.array([], pa.string()),
                           "i": pa.array([], pa.int64())}), fmt)
    out = str(tmp_path / "p.fdp")
    assert main(["profile", path, "-o", out, "-q"]) == 0
    prof = _read(out).profile
    assert prof.rows == 0 and list(prof.columns) == ["x", "s", "i"]
    assert all(cp.count == 0 for cp in prof.columns.values())


def test_reference_column_without_value_then_values_is_no_type_change(tmp_path, capsys):
    ref, cur = str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")
    with open(ref, "w") as fh:
        fh.write("x,y\n" + "".join(f"{i},\n" for i in range(50)))
    with open(cur, "w") as fh:
        fh.write("x,y\n" + "".join(f"{i},{i / 2}\n" for i in range(50)))
    main(["compare", ref, cur, "-q", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    y = next(f for f in doc["features"] if f["column"] == "y")
    assert y["n_ref"] == 0 and y["n_cur"] == 50 and y["missing_ref"] == 1.0 and y["missing_cur"] == 0.0
    assert doc["schema_changes"] == []
