"""MulticlassPerformance and RegressionPerformance against scikit-learn (the oracle), exact fractions
for the exact sums, np.quantile for the residual digest; merges, byte round trips, class cap, bad rows."""
import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st
from sklearn import metrics as skm

import fastdrift
from fastdrift import (ConcurrentUseError, CorruptStateError, CountOverflowError, IncompatibleSketchError,
                       InvalidInputError, SchemaError)
from fastdrift.kernels.cat import CatTable
from fastdrift.kernels.exactsum import SHIFT, Accumulator, exact_sum, exact_sums_by
from fastdrift.sketches.multiclass import OTHER, REASONS as MC_REASONS
from fastdrift.sketches.regression import REASONS as REG_REASONS
from fastdrift.sketches.tdigest import RANK_ERROR_BOUNDS

MP, RP = fastdrift.MulticlassPerformance, fastdrift.RegressionPerformance
RTOL = 1e-12


# -- exact sums ------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=60), st.integers(1, 4))
def test_exact_sum_is_the_rational_sum(xs, groups):
    x = np.array(xs, dtype=np.float64)
    for backend in ("c", "numba"):
        assert Fraction(exact_sum(x, backend=backend), 1 << SHIFT) == sum((Fraction(v) for v in xs), Fraction(0))
    g = np.arange(x.size) % groups
    by = exact_sums_by(g, x, groups)
    for k in range(groups):
        assert Fraction(by[k], 1 << SHIFT) == sum((Fraction(v) for v in x[g == k].tolist()), Fraction(0))


def test_exact_sum_refuses_non_finite_values(backend):
    with pytest.raises(InvalidInputError, match="row 2 is not finite"):
        exact_sum(np.array([1.0, 2.0, np.inf]), backend=backend)
    big = np.array([np.finfo(np.float64).max] * 4 + [-np.finfo(np.float64).max] * 4 + [5e-324])
    assert exact_sum(big, backend=backend) == 1 << (SHIFT - 1074)
    assert exact_sum(big[:4], big[4:], backend=backend) == 1 << (SHIFT - 1074)
    with pytest.raises(InvalidInputError, match="row 1"):
        Accumulator(backend).add(np.array([1.0, 1e300]), np.array([1.0, 1e300]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-1e80, 1e80).filter(lambda v: v == 0 or abs(v) > 1e-80)] * 3),
                max_size=40), st.booleans())
def test_exact_products_are_the_rational_sums(rows, absolute):
    a, b, c = (np.array([r[i] for r in rows], dtype=np.float64) for i in range(3))
    F = [tuple(Fraction(v) for v in r) for r in rows]
    for backend in ("c", "numba"):
        for k, args in ((1, (a,)), (2, (a, b)), (3, (a, b, c))):
            got = Fraction(Accumulator(backend).add(*args, absolute=absolute).value(), 1 << SHIFT)
            want = sum((abs(math.prod(f[:k])) if absolute else math.prod(f[:k]) for f in F), Fraction(0))
            assert got == want, (backend, k)


def test_cat_table_lookup_inserts_in_arrival_order_without_counting():
    t = CatTable("str", 2)
    ids = t.lookup(pa.array(["b", None, "a", "b", "c"]))
    assert ids.tolist() == [0, -2, 1, 0, -1]
    assert t.keys() == ["b", "a"] and t.counts.tolist() == [0, 0] and t.total == 0
    d = pa.array(["x", "a", None, "x"]).dictionary_encode()
    assert CatTable("str", 5).lookup(d).tolist() == [0, 1, -2, 0]
    assert CatTable("int", 5).lookup(pa.array([True, None, False])).tolist() == [0, -2, 1]
    with pytest.raises(SchemaError):
        t.lookup(pa.array([1, 2]))


# -- regression ------------------------------------------------------------------------------------

def _regression_data(kind, n, rng):
    if kind == "normal":
        y = rng.normal(3, 2, n)
        p = y + rng.normal(0.2, 1, n)
    elif kind == "far_from_zero":  # large mean, small spread: SST cancels badly in naive moments
        y = 1e6 + rng.normal(0, 1, n)
        p = y + rng.normal(0, 0.1, n)
    elif kind == "heavy":
        y = rng.lognormal(0, 2, n)
        p = y * rng.lognormal(0, 0.5, n)
    else:  # wide dynamic range (|y| above the float eps below which sklearn's MAPE clips the denominator)
        y = rng.normal(0, 1, n) * 10.0 ** rng.integers(-8, 30, n)
        p = y + rng.normal(0, 1, n) * 10.0 ** rng.integers(-30, 30, n)
    return p, y


@pytest.mark.parametrize("kind", ["normal", "far_from_zero", "heavy", "wide"])
@pytest.mark.parametrize("weighted", [False, True])
def test_regression_matches_sklearn(kind, weighted):
    rng = np.random.default_rng(["normal", "far_from_zero", "heavy", "wide"].index(kind))
    n = 20_000
    p, y = _regression_data(kind, n, rng)
    w = rng.random(n) * 3 if weighted else None
    rp = RP().update(p, y, w)
    m = rp.metrics()
    assert rp.labelled == n and m["labelled"] == n
    np.testing.assert_allclose(m["mae"], skm.mean_absolute_error(y, p, sample_weight=w), rtol=RTOL)
    np.testing.assert_allclose(m["rmse"], math.sqrt(skm.mean_squared_error(y, p, sample_weight=w)), rtol=RTOL)
    np.testing.assert_allclose(m["mape"], skm.mean_absolute_percentage_error(y, p, sample_weight=w), rtol=RTOL)
    np.testing.assert_allclose(m["bias"], np.average(p - y, weights=w), rtol=1e-9, atol=1e-12 * m["mae"])
    # sklearn's R^2 takes SST from a float mean; ours is exact, so the two agree to sklearn's rounding
    np.testing.assert_allclose(m["r2"], skm.r2_score(y, p, sample_weight=w), rtol=1e-9, atol=1e-12)


def test_regression_metrics_are_the_exact_values_rounded_once():
    # wide dynamic range: any float summation order loses digits here; the rational oracle does not
    rng = np.random.default_rng(5)
    p, y = _regression_data("wide", 500, rng)
    r = p - y
    rp = RP().update(p, y)
    F = [Fraction(v) for v in r.tolist()]
    n = len(F)
    assert rp.mae() == float(sum(abs(f) for f in F) / n)
    assert rp.bias() == float(sum(F) / n)
    assert rp.mse() == float(sum(f * f for f in F) / n)
    Y = [Fraction(v) for v in y.tolist()]
    sst = sum(v * v for v in Y) - sum(Y) ** 2 / n
    assert rp.r2() == float(1 - sum(f * f for f in F) / sst)
    ape = [Fraction(v) for v in (np.abs(r) / np.abs(y)).tolist()]
    assert rp.mape() == float(sum(ape) / n)


def test_regression_far_from_zero_r2_is_exact_where_naive_moments_cancel():
    y = 1e9 + np.array([0.0, 1.0, 2.0, 3.0])
    p = 1e9 + np.array([0.5, 1.0, 2.0, 2.5])
    rp = RP().update(p, y)
    assert rp.r2() == float(1 - Fraction(1, 2) / 5)  # SSE 0.5, SST 5
    naive_sst = np.sum(y * y) - np.sum(y) ** 2 / 4
    assert naive_sst != 5.0  # what sum y^2 - (sum y)^2 / n in floats gives: cancelled to 0


def test_regression_r2_beyond_the_float_range_is_minus_infinity():
    # SST ~ 1.5e-289, SSE ~ 1.4e19: 1 - SSE / SST is below -1.8e308
    rp = RP().update([0.0, 3720898080.0], [3.924686687301209e-145, 0.0])
    assert rp.r2() == -math.inf and rp.metrics()["r2"] == -math.inf


def test_regression_mape_excludes_zero_actuals_and_counts_them():
    y = np.array([0.0, 2.0, -4.0, 0.0, 1.0])
    p = np.array([1.0, 1.0, -2.0, 0.0, 1.5])
    rp = RP().update(p, y)
    nz = y != 0
    assert rp.mape_excluded == 2 and rp.labelled == 5
    assert rp.mape() == pytest.approx(skm.mean_absolute_percentage_error(y[nz], p[nz]), rel=RTOL)
    assert rp.mae() == pytest.approx(skm.mean_absolute_error(y, p), rel=RTOL)  # MAE keeps every row
    assert math.isnan(RP().update([1.0], [0.0]).mape())


def test_regression_bad_rows_are_counted_by_first_reason():
    nan, inf = np.nan, np.inf
    p = pa.array([1.0, None, nan, inf, 2.0, 2.0, 2.0, 2.0, 1e200, 3.0, -inf])
    y = pa.array([1.0, 1.0, None, 1.0, None, nan, -inf, 2.0, 1.0, 1.0, 1.0])
    w = np.array([1, 1, 1, 1, 1, 1, 1, -1, 1, 1, 1.0])
    rp = RP().update(p, y, w)
    assert rp.rejected == {"prediction_null": 1, "prediction_nan": 1, "prediction_inf": 2,
                           "actual_nan": 1, "actual_inf": 1, "weight_invalid": 1, "overflow": 1}
    assert rp.unlabelled == 1  # a null actual: no label yet, not rejected
    assert rp.labelled == 2 and rp.count == 11
    assert rp.mae() == 1.0  # rows 0 and 9: residuals 0 and 2
    assert list(rp.rejected) == [r for r in REG_REASONS if r != "actual_null"]


def test_null_actual_is_unlabelled_never_an_error_even_strict():
    rp = RP(strict=True).update(pa.array([1.0, 2.0, 3.0]), pa.array([1.5, None, 2.0]))
    assert rp.labelled == 2 and rp.unlabelled == 1 and sum(rp.rejected.values()) == 0
    assert rp.mae() == pytest.approx(0.75)
    back = RP.from_bytes(rp.to_bytes())
    assert back.unlabelled == 1 and back.rejected == rp.rejected
    mp = MP(strict=True).update(pa.array(["a", "b", "c"]), pa.array(["a", None, "b"]))
    assert mp.labelled == 2 and mp.unlabelled == 1 and sum(mp.rejected.values()) == 0
    assert mp.accuracy() == 0.5
    assert MP.from_bytes(mp.to_bytes()).unlabelled == 1


def test_regression_strict_raises_naming_the_problem_and_keeps_what_was_counted():
    rp = RP(strict=True, name="price").update([1.0, 2.0], [1.5, 2.0])
    before = rp.to_bytes()
    with pytest.raises(InvalidInputError, match=r"rows of 'price': row 1 is actual nan"):
        rp.update([1.0, 2.0, 3.0], [1.0, np.nan, 3.0])
    assert rp.to_bytes() == before
    with pytest.raises(InvalidInputError, match="3 actuals for 2 predictions"):
        RP().update([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(SchemaError):
        RP().update(["a"], [1.0])


def _split_points(n, cuts):
    return sorted({min(c, n) for c in cuts})


_values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.floats(-100, 100), st.integers(-5, 5).map(float))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_values, _values, st.floats(0, 10)), max_size=80),
       st.lists(st.integers(0, 80), max_size=4), st.booleans())
def test_regression_merge_of_any_split_equals_one_update(rows, cuts, weighted):
    p = pa.array([r[0] for r in rows], type=pa.float64())
    y = pa.array([r[1] for r in rows], type=pa.float64())
    w = np.array([r[2] for r in rows]) if weighted else None
    whole = RP().update(p, y, w)
    bounds = [0] + _split_points(len(rows), cuts) + [len(rows)]
    merged = RP()
    for a, b in zip(bounds[:-1], bounds[1:]):
        merged.merge(RP().update(p.slice(a, b - a), y.slice(a, b - a), None if w is None else w[a:b]))
    # below 2 floor(compression) + 8 residuals the digest keeps them exactly, so the bytes are equal
    assert merged == whole and merged.to_bytes() == whole.to_bytes()
    assert merged.count == len(rows)
    again = RP.from_bytes(whole.to_bytes())
    assert again == whole and again.to_bytes() == whole.to_bytes()
    assert str(again.metrics()) == str(whole.metrics())  # NaN-aware equality


def test_regression_large_merge_is_exact_for_the_sums():
    rng = np.random.default_rng(2)
    p, y = _regression_data("heavy", 50_000, rng)
    whole = RP().update(p, y)
    parts = [RP().update(p[i:i + 7_000], y[i:i + 7_000]) for i in range(0, p.size, 7_000)]
    merged = RP()
    for part in reversed(parts):
        merged.merge(part)
    for k in ("mae", "rmse", "bias", "mape", "r2", "labelled"):
        assert merged.metrics()[k] == whole.metrics()[k], k


def test_residual_quantiles_within_the_tdigest_bound():
    rng = np.random.default_rng(9)
    n = 1_000_000
    y = rng.normal(0, 1, n)
    p = y + rng.lognormal(0, 1, n) - 1.5  # skewed residuals
    rp = RP().update(p, y)
    r = np.sort(p - y)
    for q, (bound, _) in RANK_ERROR_BOUNDS.items():
        x = rp.residual_quantile(q)
        lo = np.searchsorted(r, x, "left") / n
        hi = np.searchsorted(r, x, "right") / n
        err = max(0.0, lo - q, q - hi)
        assert err <= bound, (q, err)
    m = rp.metrics()
    assert m["residual_p50"] == rp.residual_quantile(0.5)
    assert abs(m["residual_p50"] - np.quantile(r, 0.5)) < 0.01


def test_regression_count_cap_and_incompatible_merge(monkeypatch):
    monkeypatch.setattr(RP, "MAX_COUNT", 10)
    rp = RP().update(np.ones(6), np.ones(6))
    before = rp.to_bytes()
    with pytest.raises(CountOverflowError):
        rp.update(np.ones(5), np.zeros(5))
    with pytest.raises(CountOverflowError):
        rp.merge(rp.copy())
    assert rp.to_bytes() == before
    with pytest.raises(IncompatibleSketchError):
        RP(compression=50).merge(RP())
    with pytest.raises(IncompatibleSketchError):
        RP().merge(MP())


def test_regression_accepts_arrow_chunked_and_lists():
    y = [1.0, 2.0, 3.0, 4.0]
    p = [1.5, 2.0, 2.0, 4.0]
    a = RP().update(p, y)
    b = RP().update(pa.chunked_array([p[:1], p[1:]]), pa.array(np.array(y, dtype=np.float32)))
    c = RP().update(np.array(p), pa.array([1, 2, 3, 4], type=pa.int8()))
    assert a == b == c and a.mae() == 0.375


# -- multiclass ------------------------------------------------------------------------------------

CLASSES = np.array(["cat", "dog", "bird", "fish", "ant", "eel"])


def _mc_data(rng, n, k=5):
    y = CLASSES[rng.integers(0, k, n)]
    p = np.where(rng.random(n) < 0.6, y, CLASSES[rng.integers(0, k + 1, n)])  # "eel" only predicted
    y[:3] = "yak"  # only an actual
    return p, y


@pytest.mark.parametrize("form", ["numpy", "arrow", "large", "dictionary", "chunked", "list", "int"])
@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_matches_sklearn(form, weighted):
    rng = np.random.default_rng(1)
    p, y = _mc_data(rng, 5_000)
    if form == "int":
        codes = {c: i for i, c in enumerate(sorted(set(p) | set(y)))}
        p, y = np.array([codes[v] for v in p]), np.array([codes[v] for v in y])
    w = rng.random(p.size) * 2 if weighted else None
    conv = {"numpy": lambda a: a, "arrow": pa.array, "large": lambda a: pa.array(a, pa.large_string()),
            "dictionary": lambda a: pa.array(a).dictionary_encode(),
            "chunked": lambda a: pa.chunked_array([a[:1234], a[1234:]]), "list": list, "int": pa.array}[form]
    mp = MP().update(conv(p), conv(y), w)
    labels = sorted(set(p.tolist()) | set(y.tolist()))
    assert mp.classes == labels and mp.labelled == p.size
    m = mp.metrics()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p, sample_weight=w), rel=RTOL)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro", sample_weight=w), rel=RTOL)
    assert m["micro_f1"] == pytest.approx(skm.f1_score(y, p, average="micro", sample_weight=w), rel=RTOL)
    pr, rc, f1, supp = skm.precision_recall_fscore_support(y, p, labels=labels, sample_weight=w, zero_division=0)
    per = mp.per_class()
    assert list(per) == labels
    np.testing.assert_allclose([per[c]["precision"] for c in labels], pr, rtol=RTOL)
    np.testing.assert_allclose([per[c]["recall"] for c in labels], rc, rtol=RTOL)
    np.testing.assert_allclose([per[c]["f1"] for c in labels], f1, rtol=RTOL)
    np.testing.assert_allclose([per[c]["support"] for c in labels], supp, rtol=RTOL)
    assert m["macro_precision"] == pytest.approx(pr.mean(), rel=RTOL)
    got_labels, cm = mp.confusion_matrix(weighted=False)
    assert got_labels == labels
    assert (cm == skm.confusion_matrix(y, p, labels=labels)).all()
    if weighted:
        np.testing.assert_allclose(mp.confusion_matrix()[1], skm.confusion_matrix(y, p, labels=labels,
                                                                                  sample_weight=w), rtol=RTOL)


def test_multiclass_booleans_and_float_class_ids():
    a = MP().update(pa.array([True, False, True]), np.array([True, True, True]))
    assert a.classes == [False, True] and a.accuracy() == 2 / 3
    b = MP().update(np.array([1.0, 2.0, np.nan, 2.5, np.inf]), [1, 3, 1, 1, 1])
    assert b.classes == [1, 2, 3] and b.labelled == 2
    assert b.rejected["prediction_nan"] == 1 and b.rejected["prediction_not_integer"] == 1
    assert b.rejected["prediction_inf"] == 1
    with pytest.raises(SchemaError, match="str labels"):
        b.update(["a"], ["b"])
    with pytest.raises(SchemaError):
        MP().update(["a"], [1])
    assert b.labelled == 2


def test_multiclass_bad_rows_are_counted_and_strict_raises():
    p = pa.array(["a", None, "b", "a", "c"])
    y = pa.array(["a", "a", None, "b", "c"])
    w = np.array([1.0, 1.0, 1.0, np.nan, 2.0])
    mp = MP(name="species").update(p, y, w)
    assert mp.rejected == dict.fromkeys([r for r in MC_REASONS if r != "actual_null"], 0) | {
        "prediction_null": 1, "weight_invalid": 1}
    assert mp.unlabelled == 1
    # keys of skipped rows never become classes: "b" only occurs on rejected rows
    assert mp.classes == ["a", "c"] and mp.labelled == 2 and mp.count == 5
    assert mp.accuracy() == 1.0
    strict = MP(strict=True, name="species").update(["a"], ["a"])
    before = strict.to_bytes()
    with pytest.raises(InvalidInputError, match=r"rows of 'species': row 1 is prediction null"):
        strict.update(["a", None], ["a", "a"])
    assert strict.to_bytes() == before


def _oracle_pooled(p, y, kept):
    pp = np.array([v if v in kept else OTHER for v in p.tolist()], dtype=object)
    yy = np.array([v if v in kept else OTHER for v in y.tolist()], dtype=object)
    return pp, yy


def test_multiclass_class_cap_pools_later_classes_and_keeps_totals_exact():
    rng = np.random.default_rng(3)
    vocab = np.array([f"c{i:02d}" for i in range(30)])
    y = vocab[rng.integers(0, 30, 4000)]
    p = np.where(rng.random(4000) < 0.5, y, vocab[rng.integers(0, 30, 4000)])
    mp = MP(max_classes=8).update(p, y)
    # the first 8 labels to arrive: this batch's predictions, then its actuals
    arrival = list(dict.fromkeys(p.tolist() + y.tolist()))[:8]
    assert set(mp.classes) == set(arrival) and len(mp.classes) == 8
    assert mp.labelled == 4000 and mp.count == 4000
    pp, yy = _oracle_pooled(p, y, set(arrival))
    assert mp.other_count == int(((pp == OTHER) | (yy == OTHER)).sum())
    # accuracy counts a pooled prediction equal to its pooled actual as correct: exact past the cap
    assert mp.accuracy() == skm.accuracy_score(y, p)
    labels, cm = mp.confusion_matrix()
    assert labels == sorted(arrival) + [OTHER]
    assert (cm == skm.confusion_matrix(yy, pp, labels=labels)).all()
    per = mp.per_class()
    assert list(per) == sorted(arrival)
    _, _, f1, _ = skm.precision_recall_fscore_support(yy, pp, labels=sorted(arrival), zero_division=0)
    np.testing.assert_allclose([per[c]["f1"] for c in sorted(arrival)], f1, rtol=RTOL)
    back = MP.from_bytes(mp.to_bytes())
    assert back == mp and back.accuracy() == mp.accuracy()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=60),
       st.lists(st.integers(0, 60), max_size=4))
def test_multiclass_merge_past_the_cap_keeps_totals_and_accuracy(rows, cuts):
    p = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    bounds = [0] + _split_points(len(rows), cuts) + [len(rows)]
    merged = MP(max_classes=3)
    for a, b in zip(bounds[:-1], bounds[1:]):
        merged.merge(MP(max_classes=3).update(p[a:b], y[a:b]))
    assert merged.labelled == len(rows) and len(merged.classes) <= 3
    assert merged.accuracy() == skm.accuracy_score(y, p)
    assert int(merged.confusion_matrix()[1].sum()) == len(rows)


_labels = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "dé", ""]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_labels, _labels, st.floats(0, 5)), max_size=80),
       st.lists(st.integers(0, 80), max_size=4), st.booleans(), st.booleans())
def test_multiclass_merge_of_any_split_equals_one_update(rows, cuts, weighted, dictionary):
    p = pa.array([r[0] for r in rows], type=pa.string())
    y = pa.array([r[1] for r in rows], type=pa.string())
    if dictionary:
        p = p.dictionary_encode()
    w = np.array([r[2] for r in rows]) if weighted else None
    whole = MP().update(p, y, w)
    bounds = [0] + _split_points(len(rows), cuts) + [len(rows)]
    merged = MP()
    for a, b in zip(bounds[:-1], bounds[1:]):
        merged.merge(MP().update(p.slice(a, b - a), y.slice(a, b - a), None if w is None else w[a:b]))
    assert merged == whole and merged.to_bytes() == whole.to_bytes()
    assert merged.count == len(rows)
    again = MP.from_bytes(whole.to_bytes())
    assert again == whole and again.to_bytes() == whole.to_bytes()
    assert str(again.metrics()) == str(whole.metrics())


def test_multiclass_weighted_and_unweighted_batches_mix_exactly():
    a = MP().update(["a", "b"], ["a", "a"]).update(["b"], ["b"], [0.5])
    b = MP().update(["b"], ["b"], [0.5]).merge(MP().update(["a", "b"], ["a", "a"]))
    assert a == b and a.weighted
    assert a.accuracy() == 1.5 / 2.5
    assert a.confusion_matrix(weighted=False)[1].tolist() == [[1, 1], [0, 1]]


@pytest.mark.parametrize("how", ["update", "merge"])
def test_multiclass_weights_after_unweighted_rows_past_the_cap(how):
    # pooled rows counted before the first weighted batch weigh 1, correct ones included
    p1, y1 = ["a", "x", "y", "x"], ["a", "x", "x", "x"]
    p2, y2, w2 = ["x", "a", "z"], ["x", "b", "z"], [0.5, 2.0, 4.0]
    mp = MP(1).update(p1, y1)
    if how == "update":
        mp.update(p2, y2, w2)
    else:
        mp.merge(MP(1).update(p2, y2, w2))
    w = [1.0] * 4 + w2
    assert mp.accuracy() == pytest.approx(skm.accuracy_score(y1 + y2, p1 + p2, sample_weight=w), rel=RTOL)
    assert MP.from_bytes(mp.to_bytes()).accuracy() == mp.accuracy()


def test_multiclass_count_cap_lock_and_incompatible(monkeypatch):
    with pytest.raises(IncompatibleSketchError):
        MP(4).merge(MP(5))
    with pytest.raises(IncompatibleSketchError, match="str labels"):
        MP().update(["a"], ["a"]).merge(MP().update([1], [1]))
    with pytest.raises(InvalidInputError):
        MP(0)
    monkeypatch.setattr(MP, "MAX_COUNT", 3)
    mp = MP().update(["a", "b"], ["a", "b"])
    with pytest.raises(CountOverflowError):
        mp.update(["a", "b"], ["a", "b"])
    assert mp.labelled == 2
    mp._lock.acquire()  # another thread mid-update
    try:
        with pytest.raises(ConcurrentUseError):
            mp.update(["a"], ["a"])
    finally:
        mp._lock.release()


def test_decoders_reject_damaged_state():
    mp = MP().update(["a", "b"], ["b", "b"], [1.0, 2.0])
    rp = RP().update([1.0, 2.0], [0.0, 2.0])
    for blob, cls in ((mp.to_bytes(), MP), (rp.to_bytes(), RP)):
        with pytest.raises(CorruptStateError):
            cls.from_bytes(blob[:-5])
        with pytest.raises(CorruptStateError):
            (RP if cls is MP else MP).from_bytes(blob)
    from fastdrift import codec
    _, params, payload = codec.decode(mp.to_bytes())
    bad = bytearray(payload)
    bad[1] = 9  # more classes than listed
    with pytest.raises(CorruptStateError):
        MP.from_bytes(codec.encode(codec.Kind.MULTICLASS_PERFORMANCE, params, bytes(bad)))
    _, params, payload = codec.decode(rp.to_bytes())
    with pytest.raises(CorruptStateError, match="layout"):
        RP.from_bytes(codec.encode(codec.Kind.REGRESSION_PERFORMANCE, b"\x02" + params[1:], payload))
