"""TDigest: accuracy table, special values, dtypes, bad input, merge order, metrics vs scipy."""
import pathlib

import numpy as np
import pyarrow as pa
import pytest
import scipy.stats as ss
from hypothesis import given, settings, strategies as st

import fastdrift
from fastdrift import CorruptStateError, InvalidInputError, SchemaError, TDigest
from fastdrift.kernels.tdigest import capacity, sort_values
from fastdrift.sketches.tdigest import LOW_TAIL_RANK_ERROR_BOUND, QS, RANK_ERROR_BOUNDS, TIES_RANK_ERROR_BOUND

GOLDEN_V1 = pathlib.Path(__file__).parent / "data" / "golden" / "codec_v1_tdigest.bin"
GOLDEN = pathlib.Path(__file__).parent / "data" / "golden" / "codec_v1_tdigest_layout2.bin"
N = 1_000_000


def dataset(name, n=N, seed=0):
    rng = np.random.default_rng(seed)
    if name == "normal":
        return rng.normal(size=n)
    if name == "lognormal":
        return rng.lognormal(0.0, 2.0, n)
    if name == "pareto":
        return rng.pareto(1.5, n) + 1.0
    if name == "bimodal":
        return np.where(rng.random(n) < 0.3, rng.normal(-3, 0.5, n), rng.normal(4, 1.5, n))
    if name == "ascending":
        return np.sort(rng.normal(size=n))
    if name == "descending":
        return np.sort(rng.normal(size=n))[::-1].copy()
    if name == "ties":
        return rng.poisson(3, n).astype(np.float64)
    if name.startswith("-"):  # the mirror image: the long tail at the low end
        return -dataset(name[1:], n, seed)
    raise KeyError(name)


DATASETS = ["normal", "lognormal", "pareto", "bimodal", "ascending", "descending", "-lognormal", "-pareto",
            "ties"]


def rank_error(sorted_x, est, q):
    """Distance from q to [F(est-), F(est)]: zero when est is a value whose tie block covers q."""
    lo = np.searchsorted(sorted_x, est, "left") / sorted_x.size
    hi = np.searchsorted(sorted_x, est, "right") / sorted_x.size
    return np.maximum(0.0, np.maximum(lo - q, q - hi))


def merged_from_parts(x, parts=1000, compression=100, order=None):
    digests = [TDigest.from_bytes(TDigest(compression).update(p).to_bytes()) for p in np.array_split(x, parts)]
    if order is not None:
        digests = [digests[i] for i in order]
    total = TDigest(compression)
    for d in digests:
        total.merge(d)
    return total


@pytest.fixture(scope="module", params=DATASETS)
def accuracy(request):
    x = dataset(request.param)
    xs = np.sort(x)
    q = np.array(QS)
    single = rank_error(xs, TDigest().update(x).quantile(q), q)
    merged = rank_error(xs, merged_from_parts(x).quantile(q), q)
    return request.param, single, merged


def test_rank_error_table(accuracy):
    name, single, merged = accuracy
    for i, q in enumerate(QS):
        b_single, b_merged = RANK_ERROR_BOUNDS[q]
        if name == "ties":
            b_single = b_merged = TIES_RANK_ERROR_BOUND
        assert single[i] <= b_single, (name, q, single[i])
        assert merged[i] <= b_merged, (name, q, merged[i])


@pytest.mark.parametrize("name", ["lognormal", "pareto", "-lognormal", "-pareto"])
def test_skewed_low_tail_as_accurate_as_high_tail(name):
    """Lognormal(sigma=2) and Pareto(1.5) at compression 100, and their mirror images (the long tail
    low): q = 0.001 within LOW_TAIL_RANK_ERROR_BOUND, one stream and merged from 1,000 parts; the low
    tail no worse than 2x the high tail (q = 0.999)."""
    x = dataset(name)
    xs = np.sort(x)
    q = np.array([0.001, 0.01, 0.99, 0.999])
    for t in (TDigest().update(x), merged_from_parts(x)):
        err = rank_error(xs, t.quantile(q), q)
        assert err[0] <= LOW_TAIL_RANK_ERROR_BOUND, (name, err)
        assert err[:2].max() <= 1e-4, (name, err)
        assert err[0] <= 2 * err[3] + 2e-5, (name, err)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 120_000), sigma=st.floats(0.5, 3.0),
       low=st.booleans())
def test_mirrored_data_give_the_mirrored_digest(seed, n, sigma, low):
    """Each flush clusters towards the longer tail, whichever end it is: the digest of -x (one
    stream, several flushes past 32,768 values) is the digest of x mirrored, centroid by centroid,
    exactly, and its quantiles are the mirrored ones."""
    x = np.random.default_rng(seed).lognormal(0.0, sigma, n)
    if low:
        x = -x
    a, b = TDigest().update(x), TDigest().update(-x)
    ma, wa = a.centroids()
    mb, wb = b.centroids()
    np.testing.assert_array_equal(mb, -ma[::-1])
    np.testing.assert_array_equal(wb, wa[::-1])
    assert (b.min, b.max) == (-a.max, -a.min)
    q = np.array([0.0001, 0.001, 0.01, 0.5, 0.99])
    np.testing.assert_allclose(b.quantile(q), -a.quantile(1 - q), rtol=1e-9, atol=1e-12)


def test_merged_within_twice_single(accuracy):
    name, single, merged = accuracy
    assert merged.max() <= 2 * single.max() + 1e-5, (name, single, merged)


@pytest.mark.parametrize("lam", [3, 30])
def test_few_distinct_values_are_exact(lam):
    """Integer data with few distinct values: one pure cluster per value, so np.quantile exactly,
    streamed and merged from 1,000 parts (in any order)."""
    x = np.random.default_rng(lam).poisson(lam, 300_000).astype(np.float64)
    q = np.linspace(0, 1, 1001)
    want = np.quantile(x, q)
    single = TDigest().update(x)
    np.testing.assert_array_equal(single.quantile(q), want)
    order = np.random.default_rng(1).permutation(1000)
    for merged in (merged_from_parts(x), merged_from_parts(x, order=order)):
        np.testing.assert_array_equal(merged.quantile(q), want)
        assert merged.n_centroids == single.n_centroids
    vals = np.unique(x)
    np.testing.assert_array_equal(single.cdf(vals), np.searchsorted(np.sort(x), vals, "right") / x.size)


def test_many_runs_fall_back_within_capacity(rng):
    """Runs that do not fit as pure clusters fall back to plain clusters: the capacity holds."""
    for c, x in ((10, rng.poisson(30, 200_000)), (100, rng.integers(0, 100_000, 400_000)),
                 (100, np.repeat(rng.normal(size=20_000), 7)), (20, np.round(rng.normal(size=300_000), 2))):
        x = x.astype(np.float64)
        t = TDigest(c).update(x)
        assert t.n_centroids <= capacity(c)
        m = merged_from_parts(x, 100, compression=c)
        assert m.n_centroids <= capacity(c)
        xs = np.sort(x)
        q = np.array(QS)
        assert rank_error(xs, t.quantile(q), q).max() <= 0.3 / c
        assert rank_error(xs, m.quantile(q), q).max() <= 0.3 / c


def test_merge_order_does_not_matter():
    x = dataset("lognormal", 200_000, seed=3)
    xs = np.sort(x)
    q = np.array(QS)
    rng = np.random.default_rng(0)
    errs = []
    for order in (None, np.arange(200)[::-1], rng.permutation(200)):
        errs.append(rank_error(xs, merged_from_parts(x, 200, order=order).quantile(q), q))
    # tree merge (pairwise), as a distributed job reduces
    level = [TDigest().update(p) for p in np.array_split(x, 200)]
    while len(level) > 1:
        level = [level[i].merge(level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    errs.append(rank_error(xs, level[0].quantile(q), q))
    errs = np.array(errs)
    assert errs.max() <= 2e-3
    assert np.ptp(errs, axis=0).max() <= 1.5e-3


def test_small_inputs_are_exact(rng):
    q = np.linspace(0, 1, 1001)
    for n in (40, capacity(100)):  # up to one singleton per centroid of capacity
        x = rng.normal(size=n)
        t = TDigest().update(x)
        np.testing.assert_array_equal(t.quantile(q), np.quantile(x, q))
        assert t.min == x.min() and t.max == x.max()
        merged = TDigest()
        for p in np.array_split(x, 7):
            merged.merge(TDigest().update(p))
        np.testing.assert_array_equal(merged.quantile(q), np.quantile(x, q))


def test_min_max_mean_trimmed_mean(rng):
    x = rng.lognormal(0, 1, 300_000)
    t = TDigest().update(x)
    assert t.min == x.min() and t.max == x.max()
    assert t.mean == pytest.approx(x.mean(), rel=1e-9)
    assert t.trimmed_mean(0, 1) == pytest.approx(x.mean(), rel=1e-9)
    xs = np.sort(x)
    exact = xs[int(0.1 * x.size):int(0.9 * x.size)].mean()
    assert t.trimmed_mean(0.1, 0.9) == pytest.approx(exact, rel=2e-3)


def test_nulls_nan_inf_counted_apart():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 2.0, 3.0, np.inf, np.nan])
    arr = pa.array(x, mask=np.array([0, 0, 0, 0, 0, 1, 0, 0], bool), from_pandas=False)
    t = TDigest().update(arr)
    assert (t.count, t.null_count, t.nan_count, t.posinf_count, t.neginf_count) == (8, 1, 2, 2, 1)
    assert t.n == 5 and t.finite_count == 2
    assert t.min == -np.inf and t.max == np.inf
    vals = np.array([-np.inf, 1.0, 2.0, np.inf, np.inf])
    assert t.quantile(0.0) == -np.inf and t.quantile(1.0) == np.inf
    assert t.quantile(0.25) == 1.0 and t.quantile(0.5) == 2.0
    assert t.cdf(-np.inf) == pytest.approx(0.2) and t.cdf(np.inf) == 1.0
    assert t.cdf(1.5) == pytest.approx(np.mean(vals <= 1.5))
    assert np.isnan(t.cdf(np.nan))
    assert np.isnan(t.mean)


def test_only_nan_stays_empty():
    t = TDigest().update(np.full(100, np.nan))
    assert t.is_empty and t.n == 0 and t.nan_count == 100 and t.count == 100
    assert np.isnan(t.quantile(0.5)) and np.isnan(t.cdf(0.0)) and np.isnan(t.min) and np.isnan(t.mean)
    assert np.isnan(t.trimmed_mean(0.1, 0.9))
    assert "empty" in repr(t)
    assert TDigest.from_bytes(t.to_bytes()).nan_count == 100


def test_empty_answers_nan():
    t = TDigest()
    assert np.isnan(t.quantile([0.1, 0.5])).all() and np.isnan(t.cdf([1.0])).all()
    assert np.isnan(t.min) and np.isnan(t.max) and np.isnan(t.mean)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int8", "int16", "int32", "int64",
                                   "uint8", "uint16", "uint32", "uint64"])
def test_all_dtypes(dtype, rng):
    x = rng.integers(0, 100, 50_000).astype(dtype)
    t = TDigest().update(x)
    ref = TDigest().update(x.astype(np.float64))
    assert t == ref
    mask = rng.random(x.size) < 0.1
    tm = TDigest().update(pa.array(x, mask=mask))
    assert tm.null_count == mask.sum() and tm.n == (~mask).sum()
    assert tm == TDigest().update(x[~mask].astype(np.float64)).merge(TDigest().update(pa.nulls(int(mask.sum()))))


def test_offset_slices_and_chunks(rng):
    x = rng.normal(size=100_003)
    mask = rng.random(x.size) < 0.05
    arr = pa.array(x, mask=mask)
    sl = arr.slice(7, 90_001)
    want = TDigest().update(x[7:90_008][~mask[7:90_008]])
    got = TDigest().update(sl)
    assert got.null_count == mask[7:90_008].sum()
    assert got.n == want.n and got.min == want.min and got.max == want.max
    assert got == want.merge(TDigest().update(pa.nulls(int(mask[7:90_008].sum()))))
    chunked = pa.chunked_array([arr.slice(0, 10), arr.slice(10, 50_000), arr.slice(50_010)])
    assert TDigest().update(chunked) == TDigest().update(arr)


def test_buffer_boundary_updates(rng):
    """Many small updates and one big update hold the same values; counts exact, accuracy kept."""
    x = rng.normal(size=200_000)
    one = TDigest().update(x)
    many = TDigest()
    for p in np.array_split(x, 777):
        many.update(p)
    assert many.n == one.n and many.min == one.min and many.max == one.max
    q = np.array(QS)
    xs = np.sort(x)
    assert rank_error(xs, many.quantile(q), q).max() <= 1e-3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=0, max_size=300),
       st.sampled_from(["plain", "offset", "near"]))
def test_sort_is_exact(values, mode):
    x = np.array(values, dtype=np.float64)
    if mode == "offset":
        with np.errstate(all="ignore"):
            x = 1e9 + np.nan_to_num(np.fmod(x, 1e-3))  # long runs that share their top bits
    elif mode == "near":
        x = np.concatenate([x, np.nextafter(x, 0.0), x])
    got = sort_values(x)
    want = np.sort(x)
    assert np.array_equal(got, want)


def test_sort_large_adversarial(rng):
    bulk = 100.0 + 0.01 * rng.normal(size=70_000)  # a narrow bulk far from zero: sorted below its shared bits
    for x in (1e9 + rng.normal(size=70_000), rng.integers(0, 3, 70_000).astype(float), bulk,
              np.where(rng.random(70_000) < 0.001, -1.0, bulk),  # and a code for missing: split first
              np.where(rng.random(70_000) < 0.3, 1.7e9 + rng.random(70_000) * 86_400, bulk),
              np.concatenate([rng.normal(size=35_000), -np.zeros(10), np.zeros(10), [5e-324, -5e-324]]),
              np.sort(rng.normal(size=50_000))[::-1]):
        assert np.array_equal(sort_values(x), np.sort(x))


def test_bad_input():
    for c in (0, -1, 0.5, 2e6, np.nan, np.inf, "100", None, True):
        with pytest.raises(InvalidInputError):
            TDigest(c)
    t = TDigest().update(np.arange(100.0))
    for q in (-0.1, 1.1, np.nan, [0.5, 2.0]):
        with pytest.raises(InvalidInputError):
            t.quantile(q)
    for lo, hi in ((0.5, 0.5), (-0.1, 0.5), (0.2, 1.5), (np.nan, 0.5)):
        with pytest.raises(InvalidInputError):
            t.trimmed_mean(lo, hi)
    with pytest.raises(SchemaError):
        t.update(pa.array(["a", "b"]))
    assert t.n == 100


def test_merge_different_compression_keeps_receivers(rng):
    x, y = rng.normal(size=100_000), rng.normal(size=100_000)
    a = TDigest(50).update(x)
    b = TDigest(500).update(y)
    a.merge(b)
    assert a.compression == 50 and a.n == 200_000 and a.n_centroids <= capacity(50)
    both = np.sort(np.concatenate([x, y]))
    q = np.array(QS)
    assert rank_error(both, a.quantile(q), q).max() <= 3e-3


def test_memory_bound_holds(rng):
    for c in (10, 100, 1000):
        t = TDigest(c)
        for _ in range(3):
            t.update(rng.standard_cauchy(400_000))
        assert t.n_centroids <= capacity(c) == 2 * c + 8
    assert TDigest.memory_bound(100) == 16 * 208 + 8 * 32768 + 80 == 265_552


def _golden_digest():
    return TDigest(50).update(np.concatenate([np.arange(1000.0), [np.nan, np.inf, -np.inf]]))


def _check_golden(t):
    assert t.compression == 50 and t.n == 1002 and t.nan_count == 1
    assert t.min == -np.inf and t.max == np.inf
    assert abs(t.quantile(0.5) - 499.5) < 2


def test_golden_file():
    """Payload layout 2 (uvarint counts and weights) decodes to known contents and re-encodes identically."""
    if not GOLDEN.exists():  # pragma: no cover - written once
        GOLDEN.write_bytes(_golden_digest().to_bytes())
    t = TDigest.from_bytes(GOLDEN.read_bytes())
    _check_golden(t)
    assert t.to_bytes() == GOLDEN.read_bytes()


def test_golden_file_layout1():
    """Layout 1 (u64-counted int64/float64 arrays) still decodes; it re-encodes as layout 2, same digest."""
    raw = GOLDEN_V1.read_bytes()
    t = TDigest.from_bytes(raw)
    _check_golden(t)
    again = TDigest.from_bytes(t.to_bytes())
    assert again == t and len(t.to_bytes()) < len(raw)
    m1, w1 = t.centroids()
    assert m1.size == 44 and w1.sum() == 1000 and m1[0] == 0.0 and m1[-1] == 999.0


@settings(max_examples=200, deadline=None)
@given(pos=st.integers(0, 10_000), byte=st.integers(0, 255), cut=st.integers(0, 10_000))
def test_mutated_golden_never_crashes(pos, byte, cut):
    raw = bytearray(GOLDEN.read_bytes())
    raw[pos % len(raw)] = byte
    for blob in (bytes(raw), bytes(raw[: cut % len(raw)])):
        try:
            t = TDigest.from_bytes(blob)
        except CorruptStateError:
            continue
        assert t.to_bytes() == blob


@settings(max_examples=100, deadline=None)
@given(pos=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_mutated_layout1_golden_never_crashes(pos, byte):
    raw = bytearray(GOLDEN_V1.read_bytes())
    raw[pos % len(raw)] = byte
    try:
        t = TDigest.from_bytes(bytes(raw))
    except CorruptStateError:
        return
    assert TDigest.from_bytes(t.to_bytes()) == t


def test_corrupt_layout2_payloads_rejected():
    from fastdrift import codec
    good = TDigest(50).update(np.arange(100.0))
    m, w = good.centroids()

    def blob(counts, flts, means, weights, nc=None, layout=2, raw_weights=None):
        p = codec.Writer().f64(50.0).u8(layout).getvalue()
        y = codec.Writer().uvarint_values(np.array(counts)).f64_values(flts)
        y.uvarint(len(means) if nc is None else nc).f64_values(means)
        y = y.getvalue() + (raw_weights if raw_weights is not None else codec.Writer().uvarint_values(weights).getvalue())
        return codec.encode(codec.Kind.TDIGEST, p, y)

    assert TDigest.from_bytes(blob([100, 0, 0, 0, 0], [0, 99], m, w)) == good
    bad = [
        blob([100, 0, 0, 0, 0], [0, 99], m, w, layout=3),                     # unknown layout
        blob([100, 0, 0, 0, 0], [0, 99], m, w, nc=len(m) + 1),                # count beyond the data
        blob([100, 0, 0, 0, 0], [0, 99], m, w, nc=2**62),                     # absurd count
        blob([100, 0, 0, 0, 0], [0, 99], m, w, raw_weights=b"\x80\x00" * len(m)),  # non-canonical
        blob([100, 0, 0, 0, 0], [0, 99], m, w, raw_weights=b"\xff" * 9 * len(m)),   # too long
        blob([100, 0, 0, 0, 0], [0, 99], m, np.zeros(len(m), np.int64)),      # weight 0
        blob([101, 0, 0, 0, 0], [0, 99], m, w),                               # weights do not add up
        blob([100, 0, 0, 0, 0], [0, 99], m[::-1], w),                         # unsorted
    ]
    for b in bad:
        with pytest.raises(CorruptStateError):
            TDigest.from_bytes(b)


def test_corrupt_payloads_rejected():
    from fastdrift import codec
    good = TDigest(50).update(np.arange(100.0))
    m, w = good.centroids()

    def blob(counts, flts, means, weights, comp=50.0):
        p = codec.Writer().f64(comp).getvalue()
        y = codec.Writer().i64_array(counts).f64_array(flts).f64_array(means).f64_array(weights).getvalue()
        return codec.encode(codec.Kind.TDIGEST, p, y)

    assert TDigest.from_bytes(blob([100, 0, 0, 0, 0], [0, 99], m, w)) == good
    bad = [
        blob([100, 0, 0, 0, 0], [0, 99], m[::-1], w),            # unsorted
        blob([101, 0, 0, 0, 0], [0, 99], m, w),                  # weights do not add up
        blob([100, 0, 0, 0, 0], [0, 99], m, w + 0.5),            # fractional weights
        blob([100, 0, 0, 0, 0], [1, 99], m, w),                  # min above first mean
        blob([100, 0, 0, 0, 0], [0, np.nan], m, w),              # NaN max
        blob([100, -1, 0, 0, 0], [0, 99], m, w),                 # negative count
        blob([100, 0, 0, 0, 0], [0, 99], m, w, comp=0.0),        # bad compression
        blob([100, 0, 0, 0, 0], [0, 99], np.zeros(200), np.ones(200), comp=10.0),  # too many centroids
        blob([0, 0, 0, 0, 0], [0, 99], [], []),                  # empty with finite min
    ]
    for b in bad:
        with pytest.raises(CorruptStateError):
            TDigest.from_bytes(b)


def test_ks_and_wasserstein_match_scipy(rng):
    a = rng.normal(size=300_000)
    for b in (rng.normal(size=200_000), rng.normal(0.03, 1.05, 200_000), rng.lognormal(0, 0.5, 200_000)):
        ta, tb = TDigest().update(a), TDigest().update(b)
        ks = fastdrift.ks_2samp(ta, tb)
        ref = ss.ks_2samp(a, b, method="asymp")
        assert abs(ks.statistic - ref.statistic) <= 2e-3
        if ref.pvalue > 1e-6:
            assert ks.pvalue == pytest.approx(ref.pvalue, rel=0.5, abs=0.02)
        w1 = fastdrift.wasserstein(ta, tb)
        assert w1 == pytest.approx(ss.wasserstein_distance(a, b), rel=0.02, abs=2e-3)
    qs = [0.1, 0.5, 0.9]
    tb = TDigest().update(a + 0.5)
    np.testing.assert_allclose(fastdrift.quantile_shift(TDigest().update(a), tb, qs), 0.5, atol=0.01)


def test_ks_pvalue_function():
    from fastdrift.metrics import ks_pvalue
    from scipy.special import kolmogorov
    for lam in (0.3, 0.8, 1.0, 1.5, 2.5):
        assert ks_pvalue(lam / 100.0, 20_000, 20_000) == pytest.approx(kolmogorov(lam), rel=1e-6, abs=1e-12)


def test_profile_carries_tdigest(rng):
    table = pa.table({"x": rng.normal(size=50_000), "s": pa.array(["a", "b"] * 25_000)})
    p = fastdrift.profile(table)
    td = p["x"].tdigest
    assert td is not None and td.n == 50_000 and p["s"].tdigest is None
    q = fastdrift.Profile.from_bytes(p.to_bytes())
    assert q == p and q["x"].tdigest == td
    cur = fastdrift.profile(table, reference=p)
    cur.merge(fastdrift.profile(table, reference=p))
    assert cur["x"].tdigest.n == 100_000
    off = fastdrift.profile(table, tdigest=False)
    assert off["x"].tdigest is None
    assert fastdrift.Profile.from_bytes(off.to_bytes())["x"].tdigest is None
    with pytest.raises(fastdrift.IncompatibleSketchError):
        off.merge(p)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["normal", "lognormal", "ties", "mixed"]),
       n=st.integers(30, 20_000), parts=st.integers(1, 30))
def test_quantile_monotone_and_cdf_its_inverse(seed, kind, n, parts):
    """Monotone cubic interpolation: non-decreasing, exact ends, and cdf(quantile(q)) = q
    within one value wherever the quantile function is not flat."""
    rng = np.random.default_rng(seed)
    x = {"normal": lambda: rng.normal(size=n), "lognormal": lambda: rng.lognormal(0, 2, n),
         "ties": lambda: rng.poisson(4, n).astype(np.float64),
         "mixed": lambda: np.where(rng.random(n) < 0.3, 1.0, rng.normal(size=n))}[kind]()
    t = TDigest(20)
    for p in np.array_split(x, parts):
        t.merge(TDigest(20).update(p))
    q = np.linspace(0, 1, 2001)
    v = t.quantile(q)
    assert np.all(np.diff(v) >= 0)
    assert v[0] == x.min() and v[-1] == x.max()
    c = t.cdf(v)
    assert np.all(c >= q - 1.0 / n - 1e-9)
    xs = np.sort(x)
    # where the estimate is not a tied value of the data, cdf gives q back
    untied = np.searchsorted(xs, v, "right") - np.searchsorted(xs, v, "left") <= 1
    assert np.all(np.abs(c - q)[untied] <= 1.0 / n + 1e-9)
    assert rank_error(xs, v, q).max() <= 0.1  # about one cluster width at compression 20


def test_merges_are_staged_then_clustered_together(rng):
    """A merge appends the other digest's centroids to the buffer; the next query clusters them.
    Counts are exact meanwhile, and the result matches merging one at a time within the bound."""
    x = rng.lognormal(0, 1, 300_000)
    parts = [TDigest().update(p) for p in np.array_split(x, 300)]
    total = TDigest()
    for p in parts:
        p.n_centroids  # flushed parts: centroids only
        total.merge(p)
        assert total.n == total.finite_count
    assert total._s.pending and total.n == x.size
    q = np.array(QS)
    err = rank_error(np.sort(x), total.quantile(q), q)
    assert not total._s.pending and total.n_centroids <= capacity(100)
    assert err.max() <= 1e-3
    assert all(p.n == 1000 for p in parts)  # merge does not mutate its argument


def test_merge_of_staged_digests_into_a_full_buffer(rng):
    """Staged centroids, staged pairs and buffered values of the other digest all arrive, with
    flushes forced in the middle of the merge; counts stay exact and accuracy holds."""
    x = rng.normal(size=200_000)
    a = TDigest().update(x[:32_000])                    # buffer nearly full, not flushed
    b = TDigest().update(x[32_000:130_000])
    b.n_centroids                                       # centroids
    for p in np.array_split(x[130_000:190_000], 40):    # staged pairs in b's buffer
        b.merge(TDigest().update(p))
    b.update(x[190_000:])                               # and raw values
    assert b._s.pending and b._s.n_centroids > 0
    for _ in range(3):
        a.merge(b.copy())
    a.merge(TDigest().update(x[:0]))
    want = np.concatenate([x[:32_000]] + [x[32_000:]] * 3)
    assert a.n == want.size and a.min == want.min() and a.max == want.max()
    q = np.array(QS)
    assert rank_error(np.sort(want), a.quantile(q), q).max() <= 5e-4
    assert a.n_centroids <= capacity(100)


def test_merge_more_centroids_than_the_buffer_holds(rng):
    """A big-compression digest merged into a small one: its centroids are staged in chunks."""
    x, y = rng.normal(size=50_000), rng.normal(1, 2, size=300_000)
    a = TDigest(5).update(x)
    b = TDigest(20_000).update(y)
    assert 2 * b.n_centroids > a._s.buf_cap
    a.merge(b)
    assert a.n == 350_000 and a.compression == 5 and a.n_centroids <= capacity(5)
    both = np.sort(np.concatenate([x, y]))
    q = np.array(QS)
    assert rank_error(both, a.quantile(q), q).max() <= 0.03


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["normal", "lognormal", "ties", "mixed"]),
       n=st.integers(1, 30_000), parts=st.integers(1, 40), c=st.sampled_from([5, 20, 100]))
def test_flush_and_merge_pieces_keep_the_state_exact(seed, kind, n, parts, c):
    """Centroids re-clustered in pieces (every flush and merge): integer weights adding up to n exactly,
    sorted means inside [min, max], exact min and max, byte round trip identical."""
    rng = np.random.default_rng(seed)
    x = {"normal": lambda: rng.normal(size=n), "lognormal": lambda: rng.lognormal(0, 2, n),
         "ties": lambda: rng.poisson(4, n).astype(np.float64),
         "mixed": lambda: np.where(rng.random(n) < 0.3, 1.0, rng.normal(size=n))}[kind]()
    t = TDigest(c)
    for i, p in enumerate(np.array_split(x, parts)):
        part = TDigest(c).update(p)
        t.merge(part if i % 2 else TDigest.from_bytes(part.to_bytes()))
        t.update(p[: p.size // 3])
    want = np.concatenate([x] + [p[: p.size // 3] for p in np.array_split(x, parts)])
    m, w = t.centroids()
    assert t.n == want.size and w.sum() == want.size and np.all(w == np.floor(w)) and np.all(w >= 1)
    assert np.all(np.diff(m) >= 0) and t.min == want.min() and t.max == want.max()
    assert m[0] >= t.min and m[-1] <= t.max and t.n_centroids <= capacity(c)
    again = TDigest.from_bytes(t.to_bytes())
    assert again == t and again.to_bytes() == t.to_bytes()
    np.testing.assert_array_equal(again.quantile(np.linspace(0, 1, 101)), t.quantile(np.linspace(0, 1, 101)))


def test_a_fresh_or_small_digest_holds_little_memory(rng):
    """The buffer is allocated on first use and grows with the values held (up to its full size):
    an empty digest has none, a digest of a few values a small one, a big one the full bound."""
    import tracemalloc
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        empties = [TDigest() for _ in range(20)]
        per_empty = (tracemalloc.get_traced_memory()[0] - before) / 20
    finally:
        tracemalloc.stop()
    assert per_empty < 8_000, per_empty                 # centroids 3.3 KB + objects, no 262 KB buffer
    assert all(t._s.buf is None for t in empties)
    small = TDigest().update(rng.normal(size=100))
    assert small._s.nbytes < 8_000 and small.n == 100
    assert small.quantile(0.5) == small.quantile(0.5) and small._s.buf is None  # flushed: buffer given back
    small.update(rng.normal(size=100))
    assert small.n == 200 and small._s.nbytes < 8_000
    merged = TDigest().merge(small)
    assert merged._s.nbytes < 24_000 and merged.n == 200
    big = TDigest().update(rng.normal(size=100_000))
    assert big._s.buf.size == 32_768 and big._s.nbytes <= TDigest.memory_bound(100)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(0, 40_000), min_size=1, max_size=8),
       merges=st.lists(st.integers(0, 7), max_size=6), c=st.sampled_from([5, 100, 3000]))
def test_grown_buffer_gives_the_bytes_of_a_full_buffer(seed, sizes, merges, c):
    """A buffer grown as values come flushes where a buffer of full size does: every update, merge
    (staged centroids, staged pairs, buffered values) and query gives identical state."""
    import fastdrift.kernels.tdigest as kt
    rng = np.random.default_rng(seed)
    parts = [rng.lognormal(0, 1.5, n) for n in sizes]

    def build():
        ds = [TDigest(c).update(p) for p in parts]
        acc = TDigest(c)
        for j in merges:
            acc.merge(ds[j % len(ds)].copy())
            acc.update(parts[j % len(parts)][: 1 + j * 997])
        return ds, acc

    grown = build()
    first = kt.BUFFER_FIRST
    kt.BUFFER_FIRST = 1 << 40          # every buffer allocated at its full size at once
    try:
        full = build()
    finally:
        kt.BUFFER_FIRST = first
    for g, f in zip(grown[0] + [grown[1]], full[0] + [full[1]]):
        assert f._s.buf is None or f._s.buf.size == f._s.buf_cap
        assert np.array_equal(g._s.ints, f._s.ints)
        assert g.to_bytes() == f.to_bytes()
        assert np.array_equal(g.quantile(np.array(QS)), f.quantile(np.array(QS)), equal_nan=True)
