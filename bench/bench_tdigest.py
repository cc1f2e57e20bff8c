"""t-digest: bulk insert of 1e7 float64 against the peers, queries, merges, and
rank errors at equal serialized size.

Peers (each with its numpy batch API): fastdigest (``role="peer"``: the
fastest t-digest peer here), crick, pytdigest, datasketches ``tdigest_double``
and ``kll_doubles_sketch``; ``np.sort`` of the same array is the exact
reference.  Every insert benchmark records, in ``extra_info``, the serialized
size and the rank errors |F(q_hat) - q| of its result at QS.  The
``tdigest-equal-size`` group re-runs every sketch, fastdrift included, with
the size parameter from its grid whose serialized size on 1e6 normal values
is the largest not above TARGET_BYTES (the same byte budget for all), and
records the same errors on six data sets (normal, lognormal, Pareto, ascending,
and lognormal and Pareto negated, so that both tails of the skewed data are
compared); ``python bench/bench_tdigest.py`` prints that table with each
sketch's max and mean error, then fastdrift's own table at compression 100:
both tails of the skewed data, one stream and merged from 1,000 parts.
"""
import numpy as np
import pytest

import fastdrift

N = 10_000_000
TARGET_BYTES = 1600
QS = np.array([0.001, 0.01, 0.5, 0.9, 0.99, 0.999, 0.9999])

fastdigest = pytest.importorskip("fastdigest")
crick = pytest.importorskip("crick")
pytdigest = pytest.importorskip("pytdigest")
ds = pytest.importorskip("datasketches")


def rank_error(xs, est):
    lo = np.searchsorted(xs, est, "left") / xs.size
    hi = np.searchsorted(xs, est, "right") / xs.size
    return np.maximum(0.0, np.maximum(lo - QS, QS - hi))


# name -> (build(x, param), quantiles(sketch, qs), serialized size, default param, param grid)
def _fd_build(x, c):
    return fastdrift.TDigest(c).update(x)


SKETCHES = {
    "fastdrift": (_fd_build, lambda t, q: t.quantile(q), lambda t: len(t.to_bytes()), 100,
                  [80, 100, 120, 130, 140, 150, 160, 170, 180, 200, 220]),
    "fastdigest": (lambda x, c: fastdigest.TDigest.from_values(x, max_centroids=int(c)),
                   lambda t, q: np.array(t.quantile_vec(q)), lambda t: len(t.to_bytes()), 100,
                   [40, 60, 70, 80, 85, 90, 95, 100, 110, 120, 150, 200]),
    "crick": (lambda x, c: _crick(x, c), lambda t, q: np.asarray(t.quantile(q)),
              lambda t: 16 * len(t.centroids()), 100, [30, 40, 50, 60, 70, 75, 80, 85, 90, 100, 150, 200]),
    "pytdigest": (lambda x, c: pytdigest.TDigest.compute(x, compression=c),
                  lambda t, q: np.asarray(t.inverse_cdf(q)), lambda t: 16 * len(t.get_centroids()), 100,
                  [100, 150, 175, 200, 250, 300, 400, 600]),
    "ds_tdigest": (lambda x, c: _ds(ds.tdigest_double(int(c)), x),
                   lambda t, q: np.array([t.get_quantile(v) for v in q]), lambda t: len(t.serialize()), 100,
                   [40, 50, 55, 60, 65, 70, 80, 100, 120, 150]),
    "ds_kll": (lambda x, c: _ds(ds.kll_doubles_sketch(int(c)), x),
               lambda t, q: np.asarray(t.get_quantiles(q)), lambda t: len(t.serialize()), 200,
               [30, 35, 40, 45, 50, 60, 80, 100, 150, 200]),
}


def _crick(x, c):
    t = crick.TDigest(c)
    t.update(x)
    return t


def _ds(s, x):
    s.update(x)
    return s


@pytest.fixture(scope="module")
def stream():
    x = np.random.default_rng(0).normal(size=N)
    return x, np.sort(x)


@pytest.mark.benchmark(group="tdigest-insert-1e7")
@pytest.mark.parametrize("name", list(SKETCHES))
def test_insert(benchmark, stream, name):
    """Bulk insert of 1e7 float64 at each sketch's default size (compression 100, KLL k=200)."""
    x, xs = stream
    build, quant, size, param, _ = SKETCHES[name]
    benchmark.extra_info.update(n=N, param=param)
    if name == "fastdigest":
        benchmark.extra_info["role"] = "peer"
    t = benchmark.pedantic(build, args=(x, param), rounds=3, iterations=1, warmup_rounds=1)
    err = rank_error(xs, quant(t, QS))
    benchmark.extra_info.update(bytes=size(t), rank_error=dict(zip(map(str, QS), err.tolist())),
                                max_rank_error=float(err.max()))


@pytest.mark.benchmark(group="tdigest-insert-1e7")
def test_np_sort(benchmark, stream):
    """The exact reference: sorting the same array."""
    benchmark.extra_info.update(n=N)
    benchmark.pedantic(np.sort, args=(stream[0],), rounds=3, iterations=1)


@pytest.mark.benchmark(group="tdigest-insert-1e7")
def test_radix_sort(benchmark, stream):
    """The digest's buffer sort on the whole array (one 1e7 sort; the digest sorts 32,768 at a time)."""
    from fastdrift.kernels.tdigest import sort_values
    benchmark.extra_info.update(n=N)
    benchmark.pedantic(sort_values, args=(stream[0],), rounds=3, iterations=1)


def _shape(name, n=1_000_000):
    """Data shapes a sort by the keys' top bits alone left in runs: a narrow bulk far from zero
    (values, timestamps), the same bulk with a code for missing, integer ties; normal for scale."""
    rng = np.random.default_rng(11)
    bulk = 100.0 + 0.01 * rng.normal(size=n)
    return {"normal": lambda: rng.normal(size=n), "100+-0.01": lambda: bulk,
            "timestamps": lambda: 1.7e9 + rng.random(n) * 86_400.0,
            "100+-0.01, 0.1% -1": lambda: np.where(rng.random(n) < 0.001, -1.0, bulk),
            "integers 0-199": lambda: rng.integers(0, 200, n).astype(np.float64)}[name]()


SHAPES = ("normal", "100+-0.01", "timestamps", "100+-0.01, 0.1% -1", "integers 0-199")


@pytest.mark.benchmark(group="tdigest-insert-shapes")
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["fastdrift", "fastdigest", "np.sort"])
def test_insert_shapes(benchmark, name, shape):
    """Insert of 1e6 values of each shape (compression 100, the final flush included): fastdrift's
    speed should not depend on where the data sit; fastdigest and ``np.sort`` of the same array as
    the references."""
    x = _shape(shape)
    benchmark.extra_info.update(n=x.size, shape=shape)
    if name == "np.sort":
        benchmark.pedantic(np.sort, args=(x,), rounds=5, iterations=1)
        return
    if name == "fastdigest":
        benchmark.extra_info["role"] = "peer"
    build, quant, _, param, _ = SKETCHES[name]
    t = benchmark.pedantic(build, args=(x, param), rounds=5, iterations=1, warmup_rounds=1)
    xs = np.sort(x)
    err = rank_error(xs, quant(t, QS))
    benchmark.extra_info.update(max_rank_error=float(err.max()))


@pytest.fixture(scope="module")
def digests():
    rng = np.random.default_rng(1)
    a = fastdrift.TDigest(100).update(rng.normal(size=1_000_000))
    b = fastdrift.TDigest(100).update(rng.normal(1, 2, size=1_000_000))
    a.n_centroids, b.n_centroids  # flush
    return a, b


@pytest.mark.benchmark(group="tdigest-query")
def test_quantile_1000(benchmark, digests):
    """quantile() of 1,000 q values (target <= 50 us)."""
    q = np.linspace(0, 1, 1000)
    benchmark.extra_info.update(n=1000)
    benchmark(digests[0].quantile, q)


@pytest.mark.benchmark(group="tdigest-query")
def test_cdf_1000(benchmark, digests):
    x = np.linspace(-4, 4, 1000)
    benchmark.extra_info.update(n=1000)
    benchmark(digests[0].cdf, x)


@pytest.mark.benchmark(group="tdigest-query")
def test_merge_two(benchmark, digests):
    """Merging two flushed compression-100 digests (target <= 20 us; the copy is not timed;
    the centroids are staged, clustered by the next query: see test_merge_two_then_quantile)."""
    a, b = digests
    benchmark.extra_info.update(n=1)

    def setup():
        return (a.copy(), b), {}
    benchmark.pedantic(lambda x, y: x.merge(y), setup=setup, rounds=200, iterations=1)


@pytest.mark.benchmark(group="tdigest-query")
def test_merge_two_then_quantile(benchmark, digests):
    """A merge only stages the other digest's centroids; this times the merge plus the
    first query, which clusters them (the honest cost of one merge, target <= 20 us + 50 us)."""
    a, b = digests
    q = np.linspace(0, 1, 1000)
    benchmark.extra_info.update(n=1)

    def setup():
        return (a.copy(), b), {}
    benchmark.pedantic(lambda x, y: x.merge(y).quantile(q), setup=setup, rounds=200, iterations=1)


@pytest.mark.benchmark(group="tdigest-query")
def test_fastdigest_merge_two(benchmark):
    rng = np.random.default_rng(1)
    a = fastdigest.TDigest.from_values(rng.normal(size=1_000_000), max_centroids=100)
    b = fastdigest.TDigest.from_values(rng.normal(1, 2, size=1_000_000), max_centroids=100)
    benchmark.extra_info.update(n=1, role="peer")
    benchmark.pedantic(lambda x, y: x.merge_inplace(y), setup=lambda: ((a.copy(), b), {}),
                       rounds=200, iterations=1)


def _data(name, n=1_000_000):
    rng = np.random.default_rng(7)
    return {"normal": lambda: rng.normal(size=n), "lognormal": lambda: rng.lognormal(0, 2, n),
            "pareto": lambda: rng.pareto(1.5, n) + 1, "ascending": lambda: np.sort(rng.normal(size=n)),
            "-lognormal": lambda: -rng.lognormal(0, 2, n), "-pareto": lambda: -(rng.pareto(1.5, n) + 1)}[name]()


DATA = ("normal", "lognormal", "pareto", "ascending", "-lognormal", "-pareto")


def equal_size_table(target=TARGET_BYTES):
    """Rank errors of every sketch with the grid parameter whose size is the largest <= target."""
    rows = {}
    probe = _data("normal", 1_000_000)
    for name, (build, quant, size, param, grid) in SKETCHES.items():
        sizes = {p: size(build(probe, p)) for p in grid}
        fits = [p for p in grid if sizes[p] <= target]
        best = max(fits, key=lambda p: sizes[p]) if fits else min(grid, key=lambda p: sizes[p])
        per = {}
        for data in DATA:
            x = _data(data)
            t = build(x, best)
            per[data] = rank_error(np.sort(x), quant(t, QS))
        rows[name] = (best, sizes[best], per)
    return target, rows


@pytest.mark.benchmark(group="tdigest-equal-size")
def test_rank_error_at_equal_size(benchmark):
    """One timed round of the whole comparison; the errors are in extra_info (and printed)."""
    target, rows = benchmark.pedantic(equal_size_table, rounds=1, iterations=1)
    benchmark.extra_info.update(n=1, target_bytes=target)
    for name, (param, nbytes, per) in rows.items():
        benchmark.extra_info[name] = {"param": param, "bytes": nbytes,
                                      **{d: e.tolist() for d, e in per.items()},
                                      "max": float(max(e.max() for e in per.values())),
                                      "mean": float(np.mean([e.mean() for e in per.values()]))}
    print()
    print(_format(target, rows))


def _format(target, rows):
    lines = [f"rank error at equal serialized size (each sketch's largest grid size <= {target} bytes)",
             f"{'sketch':<12} {'param':>6} {'bytes':>6} {'data':<10} " + " ".join(f"{q:>8g}" for q in QS)]
    for name, (param, nbytes, per) in rows.items():
        for data, e in per.items():
            lines.append(f"{name:<12} {param:>6} {nbytes:>6} {data:<10} " + " ".join(f"{v:8.1e}" for v in e))
    lines.append(f"{'sketch':<12} {'param':>6} {'bytes':>6} {'max':>8} {'mean':>8}")
    for name, (param, nbytes, per) in rows.items():
        e = np.array(list(per.values()))
        lines.append(f"{name:<12} {param:>6} {nbytes:>6} {e.max():8.2e} {e.mean():8.2e}")
    return "\n".join(lines)


def tails_table(compression=100, parts=1000):
    """fastdrift's rank errors on the skewed data and their negations (both tails): one stream
    and merged from ``parts`` serialized parts."""
    rows = []
    for data in ("lognormal", "-lognormal", "pareto", "-pareto"):
        x = _data(data)
        xs = np.sort(x)
        single = fastdrift.TDigest(compression).update(x)
        merged = fastdrift.TDigest(compression)
        for p in np.array_split(x, parts):
            merged.merge(fastdrift.TDigest.from_bytes(fastdrift.TDigest(compression).update(p).to_bytes()))
        rows.append((data, "single", rank_error(xs, single.quantile(QS))))
        rows.append((data, f"merged {parts}", rank_error(xs, merged.quantile(QS))))
    lines = [f"fastdrift, compression {compression}, 1e6 values: rank error",
             f"{'data':<11} {'digest':<12} " + " ".join(f"{q:>8g}" for q in QS)]
    for data, kind, e in rows:
        lines.append(f"{data:<11} {kind:<12} " + " ".join(f"{v:8.1e}" for v in e))
    return "\n".join(lines)


if __name__ == "__main__":
    print(_format(*equal_size_table()))
    print()
    print(tails_table())
