"""fastdrift.spark on a real local[2] SparkSession: equal to the single-process profile.

One session for the module (a session is slow to start) and one 2M-row DataFrame in 16
partitions of several Arrow batches each, so every merge path (batches within a
partition, partitions on the driver, treeReduce on the executors) is exercised.
"""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

import fastdrift

pytestmark = pytest.mark.spark

ROWS = 2_000_000
PARTITIONS = 16
BATCH = 50_000  # spark.sql.execution.arrow.maxRecordsPerBatch: 2-3 batches per partition


def _java_home():
    java = shutil.which("java")
    return str(pathlib.Path(java).resolve().parent.parent) if java else None


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    # Stray SPARK_* variables (a SPARK_HOME of another install, SPARK_CONF_DIR, ...) make
    # pyspark start the wrong JVM or read foreign configuration: the session must be ours.
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SPARK_") or k == "PYSPARK_SUBMIT_ARGS"}
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # Workers run this interpreter, which has pyarrow and fastdrift (the system python may not).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    if not os.environ.get("JAVA_HOME") and _java_home():
        os.environ["JAVA_HOME"] = _java_home()
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master("local[2]").appName("fastdrift-tests")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH))
               .config("spark.sql.shuffle.partitions", str(PARTITIONS))
               .config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "2g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    os.environ.update(saved)


def _table(seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    f = rng.normal(10.0 + shift, 3.0, ROWS)
    f[rng.random(ROWS) < 0.005] = np.nan
    f[:3] = [np.inf, -np.inf, np.inf]
    f_null = rng.random(ROWS) < 0.01
    ints = rng.integers(-1_000, 1_000, ROWS)  # heavy ties: ~1,000 copies of each value
    cats = np.array([f"c{i:02d}" for i in range(50)])
    s = cats[rng.zipf(1.5, ROWS) % 50]
    s_null = rng.random(ROWS) < 0.02
    b = rng.random(ROWS) < 0.3
    dict_col = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 4, ROWS), pa.int32()),
                                              pa.array(["red", "green", "blue", "cyan"]))
    return pa.table({
        "f": pa.array(f, mask=f_null),
        "i": pa.array(ints, pa.int64()),
        "s": pa.array(s, mask=s_null),
        "b": pa.array(b, mask=rng.random(ROWS) < 0.01),
        "d": dict_col,
    })


def _spark_df(spark, table: pa.Table):
    # Spark has no dictionary type: the dictionary column arrives as strings (same categories).
    plain = table.set_column(table.schema.get_field_index("d"), "d", table.column("d").cast(pa.string()))
    df = spark.createDataFrame(plain).repartition(PARTITIONS).cache()
    assert df.count() == ROWS
    return df


@pytest.fixture(scope="session")
def data(spark):
    table = _table(1)
    return table, _spark_df(spark, table)


@pytest.fixture(scope="session")
def profiles(data):
    import fastdrift.spark
    table, df = data
    return fastdrift.profile(table), fastdrift.spark.profile(df)


def _assert_numeric_equal(a, b):
    assert np.array_equal(a.histogram.edges, b.histogram.edges)
    assert a.histogram.counts.tolist() == b.histogram.counts.tolist()
    assert (a.histogram.null_count, a.histogram.nan_count) == (b.histogram.null_count, b.histogram.nan_count)
    ma, mb = a.moments, b.moments
    assert (ma.n, ma.null_count, ma.nan_count, ma.posinf_count, ma.neginf_count) == \
           (mb.n, mb.null_count, mb.nan_count, mb.posinf_count, mb.neginf_count)
    assert (ma.min, ma.max) == (mb.min, mb.max)
    # Partitions change the summation order: equal up to reassociation.
    assert mb.mean == pytest.approx(ma.mean, rel=1e-12)
    assert mb.variance() == pytest.approx(ma.variance(), rel=1e-12)


def _assert_categorical_equal(a, b):
    ca, cb = a.categorical, b.categorical
    # Arrival order depends on the partitioning; the mapping must not.
    assert ca.to_dict() == cb.to_dict()
    assert (ca.other_count, ca.null_count, ca.key_type) == (cb.other_count, cb.null_count, cb.key_type)


def test_profile_equals_single_process(profiles):
    local, dist = profiles
    assert dist.rows == local.rows == ROWS
    assert list(dist.columns) == list(local.columns) == ["f", "i", "s", "b", "d"]
    assert dist.skipped == local.skipped
    for name in ("f", "i"):
        _assert_numeric_equal(local[name], dist[name])
    for name in ("s", "b", "d"):
        _assert_categorical_equal(local[name], dist[name])
    # ten distinct deciles: the comparison above is not vacuous
    assert local["f"].histogram.edges.size == 9


def test_tdigest_within_documented_bound(data, profiles):
    table, _ = data
    _, dist = profiles
    x = table.column("f").to_numpy(zero_copy_only=False)
    x = np.sort(x[~np.isnan(x)])  # the digest holds ±inf at its ends, nulls and NaN apart
    # the digest's merged-from-many-parts bounds (docs/sketches.md, "t-digest"; tests/test_tdigest.py)
    bounds = {0.001: 5e-4, 0.01: 1e-3, 0.5: 2e-3, 0.9: 3e-3, 0.99: 3e-3, 0.999: 1e-3}
    td = dist["f"].tdigest
    assert td.n == x.size
    for q, bound in bounds.items():
        est = td.quantile(q)
        # rank error: distance from q to [F(est-), F(est)]
        lo = np.searchsorted(x, est, side="left") / x.size
        hi = np.searchsorted(x, est, side="right") / x.size
        err = 0.0 if lo <= q <= hi else min(abs(q - lo), abs(q - hi))
        assert err <= bound, (q, est, err)


def test_profile_bytes_round_trip(profiles):
    _, dist = profiles
    blob = dist.to_bytes()
    back = fastdrift.Profile.from_bytes(blob)
    assert back == dist
    assert back.to_bytes() == blob


def test_current_profile_against_reference(data, profiles):
    import fastdrift.spark
    table, df = data
    local, _ = profiles
    expected = fastdrift.profile(table, reference=local)
    got = fastdrift.spark.profile(df, reference=local)
    for name in ("f", "i"):
        _assert_numeric_equal(expected[name], got[name])
    for name in ("s", "b", "d"):
        _assert_categorical_equal(expected[name], got[name])


def test_merge_on_executors_with_tree_reduce(data, profiles):
    import fastdrift.spark
    _, df = data
    local, _ = profiles
    got = fastdrift.spark.profile(df, reference=local, merge="executors")
    assert got.rows == ROWS
    _assert_numeric_equal(local["f"], got["f"])
    _assert_categorical_equal(local["s"], got["s"])


def test_columns_and_config(data):
    import fastdrift.spark
    table, df = data
    # 100 quantile bins over a heavily tied integer column: many flagged cells, collapsing edges.
    cfg = {"bins": 100, "tdigest": False, "max_categories": 10}
    expected = fastdrift.profile(table, columns=["i", "s"], bins=100, tdigest=False, max_categories=10)
    got = fastdrift.spark.profile(df, columns=["i", "s"], config=cfg)
    assert list(got.columns) == ["i", "s"] and got["i"].tdigest is None
    _assert_numeric_equal(expected["i"], got["i"])
    # Past the cap which categories own counters depends on arrival order; totals do not.
    ce, cg = expected["s"].categorical, got["s"].categorical
    assert len(cg.categories) == 10
    assert (cg.count, cg.null_count) == (ce.count, ce.null_count)
    uniform = fastdrift.spark.profile(df, columns=["f"], config={"strategy": "uniform", "bins": 7})
    _assert_numeric_equal(fastdrift.profile(table, columns=["f"], bins=7, strategy="uniform")["f"],
                          uniform["f"])
    with pytest.raises(fastdrift.InvalidInputError, match="unknown profile options"):
        fastdrift.spark.profile(df, config={"bucket": 3})
    with pytest.raises(fastdrift.SchemaError, match="nope"):
        fastdrift.spark.profile(df, columns=["nope"])


def test_compare_flags_the_drifted_column(spark, data, profiles):
    import fastdrift.spark
    table, df = data
    local, _ = profiles
    drifted = table.set_column(0, "f", pa.compute.add(table.column("f"), 3.0))  # one standard deviation
    cur = _spark_df(spark, drifted)
    try:
        rows = fastdrift.spark.compare(df, cur)
        by_col = {r.column: r for r in rows}
        assert rows[0].column == "f" and by_col["f"].psi > 0.25
        assert all(by_col[c].psi < 0.01 for c in ("i", "s", "b", "d"))
        # Against an already computed reference profile only the current pass runs; same answer.
        again = {r.column: r.psi for r in fastdrift.spark.compare(local, cur)}
        expected = {r.column: r.psi for r in fastdrift.compare_profiles(local, fastdrift.profile(drifted, reference=local))}
        assert again == pytest.approx(expected, rel=1e-12)
    finally:
        cur.unpersist()


def test_import_fastdrift_does_not_import_pyspark():
    code = "import sys, fastdrift, fastdrift.spark; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_empty_partitions_constant_and_null_columns(spark):
    import fastdrift.spark
    # 5 rows in 8 partitions: most partitions are empty and yield empty partial sketches;
    # a constant column takes the single-edge shortcut; a string column is null but in one row.
    table = pa.table({"x": pa.array([1.5, 2.5, None, 4.0, float("nan")]),
                      "c": pa.array([7, 7, 7, 7, 7], pa.int32()),
                      "s": pa.array([None, None, "a", None, None])})
    df = spark.createDataFrame(table).repartition(8)
    local, dist = fastdrift.profile(table), fastdrift.spark.profile(df)
    assert dist.rows == 5
    _assert_numeric_equal(local["x"], dist["x"])
    _assert_numeric_equal(local["c"], dist["c"])
    assert dist["c"].histogram.edges.tolist() == [7.0]
    _assert_categorical_equal(local["s"], dist["s"])
    # no finite value: profiled, not refused (the placeholder edge; its null and NaN counts)
    gone = fastdrift.spark.profile(spark.createDataFrame(pa.table({"x": pa.array([float("nan"), None])})))
    assert gone["x"].histogram.edges.tolist() == [0.0] and gone["x"].missing_count == 2


def test_converted_types_and_columns_without_values_equal_the_local_profile(spark):
    """Big integers, decimals, dates, timestamps and all-missing columns: the local profile's counts."""
    import decimal
    import fastdrift.spark
    n = 400
    day = np.datetime64("2024-01-01") + (np.arange(n) % 50).astype("timedelta64[D]")
    table = pa.table({
        "big": pa.array(np.arange(n, dtype=np.int64) * 7_919 + 2**60 + 1),
        "dec": pa.array([decimal.Decimal(i).scaleb(-2) for i in range(n)], pa.decimal128(10, 2)),
        "day": pa.array(day),
        "ts": pa.array(np.arange(n, dtype=np.int64) * 3_600_000_123, pa.timestamp("us", tz="UTC")),
        "gone": pa.nulls(n, pa.float64()),
        "nan": np.full(n, np.nan)})
    df = spark.createDataFrame(table).repartition(4)
    local, dist = fastdrift.profile(table), fastdrift.spark.profile(df)
    assert list(dist.columns) == table.column_names and dist.skipped == []
    for c in ("dec", "day", "ts"):
        _assert_numeric_equal(local[c], dist[c])
    # near 2**60 doubles are 256 apart: bins, counts and extremes are exact, a variance of deviations
    # ~1e6 merged over partitions is not (float64, the documented rounding of 64-bit integers)
    assert dist["big"].histogram == local["big"].histogram
    assert (dist["big"].moments.n, dist["big"].moments.min, dist["big"].moments.max) == \
        (local["big"].moments.n, local["big"].moments.min, local["big"].moments.max)
    for c in ("gone", "nan"):  # no value: means are NaN, the counters equal
        assert dist[c].histogram == local[c].histogram and dist[c].moments.count == local[c].moments.count
    assert dist["gone"].missing_count == dist["nan"].missing_count == n


def test_changed_type_against_a_reference_is_a_schema_error_on_the_driver(spark, profiles):
    import fastdrift.spark
    local, _ = profiles
    # "f" is numeric in the reference; a string column of that name cannot be counted on its bins.
    df = spark.createDataFrame(pa.table({"f": ["a", "b"], "i": pa.array([1, 2], pa.int64()),
                                         "s": ["x", "y"], "b": [True, False], "d": ["u", "v"]}))
    with pytest.raises(fastdrift.SchemaError, match="column 'f' changed type: numeric in the reference"):
        fastdrift.spark.profile(df, reference=local)
    # the same rule names a reference column the DataFrame lacks
    with pytest.raises(fastdrift.SchemaError, match="DataFrame: column '[bf]' of the reference is missing"):
        fastdrift.spark.profile(df.drop("b", "f"), reference=local)


def test_merge_falls_back_to_the_driver_without_rdd(profiles):
    # Spark Connect DataFrames have no .rdd: "auto" must merge the collected partials on the
    # driver, "executors" must say it cannot.
    from fastdrift.sketches.reference import count_job
    from fastdrift.spark import _merge_partials
    local, _ = profiles
    halves = [fastdrift.Profile.from_bytes(local.to_bytes()) for _ in range(3)]

    class ConnectLike:
        @property
        def rdd(self):
            raise RuntimeError("PySparkNotImplementedError: [NOT_IMPLEMENTED] rdd() is not implemented.")

        def collect(self):
            return [(p.to_bytes(),) for p in halves]

    merged = _merge_partials(ConnectLike(), "auto", count_job(local))
    assert merged.rows == 3 * local.rows
    np.testing.assert_array_equal(merged["f"].histogram.counts, 3 * local["f"].histogram.counts)
    with pytest.raises(RuntimeError, match="rdd"):
        _merge_partials(ConnectLike(), "executors", count_job(local))


def test_passes_over_the_data(spark, monkeypatch):
    # Exact decile bins: three jobs (profile, grid, selection; the bins' counts are derived);
    # uniform bins: two (profile, histograms); a current profile: one.
    import fastdrift.spark
    table = _table(3)
    df = spark.createDataFrame(table.slice(0, 50_000)).repartition(4)
    jobs = []
    cls = type(df)  # pyspark 4: the classic DataFrame subclass defines mapInArrow
    real = cls.mapInArrow

    def counting(self, *a, **k):
        jobs.append(1)
        return real(self, *a, **k)
    monkeypatch.setattr(cls, "mapInArrow", counting)
    ref = fastdrift.spark.profile(df)
    assert len(jobs) == 3
    jobs.clear()
    fastdrift.spark.profile(df, config={"strategy": "uniform"})
    assert len(jobs) == 2
    jobs.clear()
    fastdrift.spark.profile(df, reference=ref)
    assert len(jobs) == 1


def test_performance_sketch_equals_the_local_profile(spark):
    """``label``/``prediction`` options: the performance sketch counted on the executors, in the first
    pass, equal to the local one (exact counts; exact sums up to reassociation); a current DataFrame
    without labels counts its scores only."""
    import fastdrift.spark
    rng = np.random.default_rng(4)
    n = 30_000
    score = rng.random(n)
    y = (rng.random(n) < score).astype(np.int64)
    y[:7] = 2  # not a label: rejected, counted
    table = pa.table({"x": rng.normal(0, 1, n), "score": score, "y": pa.array(y, mask=rng.random(n) < 0.01)})
    df = spark.createDataFrame(table).repartition(PARTITIONS)
    opts = {"label": "y", "prediction": "score"}
    local, dist = fastdrift.profile(table, **opts), fastdrift.spark.profile(df, config=opts)
    assert list(dist.columns) == ["x", "score"] and dist.performance.label == "y"
    a, b = local.performance.sketch, dist.performance.sketch
    assert (a.labelled, a.unlabelled, a.rejected) == (b.labelled, b.unlabelled, b.rejected)
    assert b.rejected["label_not_binary"] == 7 and b.labelled + b.unlabelled == n - 7
    for k, v in a.metrics().items():
        assert b.metrics()[k] == pytest.approx(v, rel=1e-12), k
    cur = fastdrift.spark.profile(spark.createDataFrame(table.drop_columns(["y"])).repartition(PARTITIONS),
                                  reference=dist)
    assert cur.performance.sketch.labelled == 0 and cur.performance.sketch.unlabelled == n


def test_segmented_profile_equals_the_in_memory_one(data, spark):
    """segment_by through Spark's passes: per segment, counts, edges, categories and moments' counters
    equal the single-process profile (each partition has the 4 keys, under the cap)."""
    import fastdrift.spark
    table, df = data
    mem = fastdrift.profile(table, segment_by=["d"])
    sp = fastdrift.spark.profile(df, segment_by=["d"])
    assert sp.segment_by == ("d",) and "d" not in sp.columns
    assert set(sp.segments) == set(mem.segments) == {f"d={c}" for c in ("red", "green", "blue", "cyan")}
    assert sp.rows == mem.rows == sum(s.rows for s in sp.segments.values())
    for key, m in mem.segments.items():
        s = sp.segments[key]
        assert s.rows == m.rows
        for n, cp in m.columns.items():
            if cp.kind == "numeric":
                _assert_numeric_equal(cp, s.columns[n])
            else:
                assert s.columns[n].categorical.to_dict() == cp.categorical.to_dict()
                assert s.columns[n].categorical.null_count == cp.categorical.null_count
    # a current profile through Spark takes the reference's segments
    cur = fastdrift.spark.profile(df, reference=sp)
    assert cur.segment_by == ("d",) and {k: v.rows for k, v in cur.segments.items()} == \
        {k: v.rows for k, v in sp.segments.items()}
    with pytest.raises(fastdrift.SchemaError, match="'nope'"):
        fastdrift.spark.profile(df, segment_by=["nope"])


def test_margin_scores_through_spark_equal_the_local_profile(spark):
    """``scores: margin``: the executors read raw margins as the local profile does (confusion counts
    at margin 0 equal numpy's)."""
    import fastdrift.spark
    rng = np.random.default_rng(5)
    n = 20_000
    margin = rng.normal(0, 3, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(np.int64)
    table = pa.table({"x": rng.normal(0, 1, n), "m": margin, "y": y})
    opts = {"label": "y", "prediction": "m", "scores": "margin"}
    dist = fastdrift.spark.profile(spark.createDataFrame(table).repartition(PARTITIONS), config=opts)
    local = fastdrift.profile(table, **opts)
    assert dist.performance.sketch.scores == "margin"
    c = dist.performance.sketch.confusion(0.5)
    pred = margin > 0  # probability 0.5 is margin 0
    assert (c["tp"], c["fp"], c["fn"]) == (int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()),
                                           int((~pred & (y == 1)).sum()))
    for k, v in local.performance.sketch.metrics().items():
        assert dist.performance.sketch.metrics()[k] == pytest.approx(v, rel=1e-12, nan_ok=True), k
