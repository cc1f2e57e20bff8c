"""BinaryPerformance against scikit-learn (the oracle) and its sketch contract."""
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import (average_precision_score, brier_score_loss, confusion_matrix, f1_score, log_loss,
                             precision_score, recall_score, roc_auc_score)

import fastdrift
from fastdrift import BinaryPerformance
from fastdrift.errors import CorruptStateError, IncompatibleSketchError, InvalidInputError


def _sigmoid(m):
    from scipy.special import expit
    return expit(m)


def _data(kind, n, seed=0):
    """(scores, labels, scores mode) of one score distribution."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int8)
    if kind == "logistic":
        return _sigmoid(rng.normal(0, 1.5, n) + 1.2 * y), y, "probability"
    if kind == "beta":
        return np.where(y == 1, rng.beta(2, 5, n), rng.beta(1.5, 5, n)), y, "probability"
    if kind == "extreme":  # most mass within 1e-6 of 0 and 1
        return _sigmoid(rng.normal(0, 12, n) + 4 * y), y, "probability"
    if kind == "piled":  # 5 values hold 90% of the rows, the rest continuous
        piles = np.array([0.02, 0.1, 0.5, 0.9, 0.97])[rng.integers(0, 5, n)]
        s = np.where(rng.random(n) < 0.9, piles, rng.random(n))
        return np.where((y == 1) & (rng.random(n) < 0.3), np.minimum(s + 0.05, 1.0), s), y, "probability"
    if kind == "imbalanced":  # 1% positives: average precision rests on a few top bins
        y = (rng.random(n) < 0.01).astype(np.int8)
        return _sigmoid(rng.normal(-3, 1, n) + 2.5 * y), y, "probability"
    if kind == "tiny_margin":
        return rng.normal(0, 1e-7, n) + 1e-7 * y, y, "margin"
    if kind == "huge_margin":
        return rng.normal(0, 1e7, n) + 7e6 * y, y, "margin"
    raise ValueError(kind)


def _prob(s, mode):
    return _sigmoid(s) if mode == "margin" else s


# -- accuracy against scikit-learn -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["logistic", "beta", "extreme", "piled", "imbalanced", "tiny_margin",
                                  "huge_margin"])
def test_auc_and_ap_within_1e3_of_sklearn_on_1e6_rows(kind):
    s, y, mode = _data(kind, 1_000_000)
    p = BinaryPerformance(scores=mode).update(s, y)
    assert not p.is_exact  # the binned table is what is measured
    auc, ap = roc_auc_score(y, s), average_precision_score(y, s)
    assert abs(p.roc_auc() - auc) <= 1e-3
    assert abs(p.roc_auc() - auc) <= p.roc_auc_bound() + 1e-12  # the stated bound holds
    assert abs(p.average_precision() - ap) <= 1e-3


@pytest.mark.parametrize("mode", ["probability", "margin"])
def test_exact_when_few_distinct_scores(mode):
    rng = np.random.default_rng(1)
    n = 200_000
    y = (rng.random(n) < 0.4).astype(np.int8)
    # 1,000 distinct scores, some a hair apart (same bin), fewer than the bins
    s = np.round(rng.random(n) * 0.999 + 0.4 * y * rng.random(n), 3) / 1.4
    s[::7] = 0.300001
    s[1::7] = 0.300002
    if mode == "margin":
        s = np.log(s + 1e-3) - np.log1p(-s)
    p = BinaryPerformance(scores=mode).update(s, y)
    assert p.is_exact and p.roc_auc_bound() == 0.0
    assert p.roc_auc() == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert p.average_precision() == pytest.approx(average_precision_score(y, s), abs=1e-12)


@pytest.mark.parametrize("kind", ["logistic", "piled", "tiny_margin", "huge_margin"])
@pytest.mark.parametrize("weighted", [False, True])
def test_log_loss_brier_confusion_exact(kind, weighted):
    s, y, mode = _data(kind, 100_000, seed=2)
    w = np.random.default_rng(3).exponential(1.0, s.size) if weighted else None
    p = BinaryPerformance(scores=mode).update(s, y, w)
    prob = _prob(s, mode)
    if mode == "margin":  # no clipping: the exact log-sigmoid (scikit-learn clips probabilities at eps)
        expected = np.average(np.logaddexp(0.0, np.where(y == 1, -s, s)), weights=w)
    else:
        expected = log_loss(y, prob, sample_weight=w)
    assert p.log_loss() == pytest.approx(expected, rel=1e-10)
    assert p.brier() == pytest.approx(brier_score_loss(y, prob, sample_weight=w), rel=1e-10)
    pred = (prob >= 0.5).astype(int)
    if mode == "margin":
        pred = (s >= 0).astype(int)
    (tn, fp), (fn, tp) = confusion_matrix(y, pred, sample_weight=w)
    c = p.confusion(0.5)
    for k, v in dict(tn=tn, fp=fp, fn=fn, tp=tp).items():
        assert c[k] == pytest.approx(v, rel=1e-12), k
    assert c["precision"] == pytest.approx(precision_score(y, pred, sample_weight=w), rel=1e-12)
    assert c["recall"] == pytest.approx(recall_score(y, pred, sample_weight=w), rel=1e-12)
    assert c["f1"] == pytest.approx(f1_score(y, pred, sample_weight=w), rel=1e-12)
    assert p.positive_rate() == pytest.approx(np.average(y, weights=w), rel=1e-12)
    assert p.prediction_rate(0.5) == pytest.approx(np.average(pred, weights=w), rel=1e-12)


def test_margin_log_loss_is_stable_for_huge_margins():
    m = np.array([800.0, -800.0, 50.0, -1e6, 3.0])
    y = np.array([0, 1, 1, 1, 0])
    p = BinaryPerformance(scores="margin").update(m, y)
    expected = np.mean([800.0, 800.0, math.log1p(math.exp(-50.0)), 1e6, 3.0 + math.log1p(math.exp(-3.0))])
    assert p.log_loss() == pytest.approx(expected, rel=1e-15)


def test_any_threshold_confusion_in_the_exact_table():
    s, y, _ = _data("piled", 50_000, seed=4)
    s = np.round(s, 2)
    p = BinaryPerformance().update(s, y)
    assert p.is_exact
    for t in (0.0, 0.05, 0.3, 0.9, 1.0):
        (tn, fp), (fn, tp) = confusion_matrix(y, (s >= t).astype(int), labels=[0, 1])
        assert [p.confusion(t)[k] for k in ("tn", "fp", "fn", "tp")] == [tn, fp, fn, tp]


def test_precision_recall_at_k_against_sorting():
    rng = np.random.default_rng(5)
    s = rng.random(5000)
    y = (rng.random(5000) < s).astype(np.int8)
    p = BinaryPerformance().update(s, y)
    order = np.argsort(-s)
    for k in (1, 10, 333, 5000, 9999):
        top = y[order[:min(k, 5000)]]
        assert p.precision_at_k(k) == pytest.approx(top.mean(), rel=1e-12)
        assert p.recall_at_k(k) == pytest.approx(top.sum() / y.sum(), rel=1e-12)
    # ties with the k-th row count in proportion
    t = BinaryPerformance().update(np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0, 0, 1]))
    assert t.precision_at_k(3) == pytest.approx((1 + 2 * 0.25) / 3)
    with pytest.raises(InvalidInputError):
        t.precision_at_k(0)


def test_calibration_table_and_ece():
    rng = np.random.default_rng(6)
    s = np.round(rng.random(20_000), 3)
    y = (rng.random(20_000) < s ** 1.3).astype(np.int8)
    cal = BinaryPerformance().update(s, y).calibration(10)
    b = np.minimum((s * 10).astype(int), 9)
    b = np.clip(np.searchsorted(np.linspace(0, 1, 11), s, side="right") - 1, 0, 9)
    for i in range(10):
        sel = b == i
        assert cal.count[i] == sel.sum()
        assert cal.mean_predicted[i] == pytest.approx(s[sel].mean(), rel=1e-12)
        assert cal.fraction_positive[i] == pytest.approx(y[sel].mean(), rel=1e-12)
    ece = sum(np.mean(b == i) * abs(y[b == i].mean() - s[b == i].mean()) for i in range(10))
    assert cal.ece == pytest.approx(ece, rel=1e-10)
    mp, fp, w = BinaryPerformance().update(s, y).reliability(10)
    assert mp.size == fp.size == w.size == 10


def test_roc_curve_points_match_sklearn_in_the_exact_table():
    from sklearn.metrics import roc_curve
    rng = np.random.default_rng(7)
    s = np.round(rng.random(3000), 2)
    y = (rng.random(3000) < s).astype(int)
    fpr, tpr, thr = BinaryPerformance().update(s, y).roc_curve()
    f2, t2, th2 = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2, rtol=1e-12)
    np.testing.assert_allclose(tpr, t2, rtol=1e-12)
    np.testing.assert_allclose(thr[1:], th2[1:])


# -- bad rows --------------------------------------------------------------------------------------

def test_bad_rows_are_counted_and_skipped():
    s = np.array([0.2, np.nan, 1.5, -0.1, 0.7, 0.4, 0.9, 0.6])
    y = np.array([0, 1, 1, 0, 2, 1, -1, 1])
    w = np.array([1.0, 1, 1, 1, 1, np.nan, 1, -2])
    p = BinaryPerformance().update(s, y, w)
    assert p.rejected == dict(score_null=0, score_nan=1, score_out_of_range=2, label_not_binary=2, weight_invalid=2)
    assert p.labelled == 1 and p.count == 8
    # margins: infinities are out of range
    m = BinaryPerformance(scores="margin").update(np.array([np.inf, -np.inf, 3.0]), np.array([1, 0, 1]))
    assert m.rejected["score_out_of_range"] == 2 and m.labelled == 1


def test_strict_raises_naming_the_column_and_counts_nothing():
    p = BinaryPerformance(strict=True, name="churn").update(np.array([0.3, 0.6]), np.array([0, 1]))
    before = p.to_bytes()
    with pytest.raises(InvalidInputError, match="churn.*label_not_binary"):
        p.update(np.array([0.3, 0.6]), np.array([0, 5]))
    with pytest.raises(InvalidInputError, match="score_out_of_range"):
        p.update(np.array([0.3, 7.0]), np.array([0, 1]))
    assert p.to_bytes() == before


def test_arrow_input_nulls_and_chunks():
    s = pa.chunked_array([[0.1, None, 0.8], [0.4, 0.9]])
    y = pa.chunked_array([[False, True], [None, True, False]])
    p = BinaryPerformance().update(s, y)
    assert p.rejected["score_null"] == 1 and p.null_count == 1
    assert p.labelled == 3 and p.unlabelled == 1  # a null label: the score counts as unlabelled
    q = BinaryPerformance().update(np.array([0.1, 0.4, 0.9]), np.array([0, 1, 0]))
    assert p.roc_auc() == q.roc_auc()
    with pytest.raises(InvalidInputError, match="labels"):
        BinaryPerformance().update(np.array([0.1, 0.2]), np.array([1]))
    with pytest.raises(fastdrift.SchemaError):
        BinaryPerformance().update(np.array([0.1]), pa.array(["yes"]))


def test_empty_sketch_metrics_are_nan():
    p = BinaryPerformance()
    m = p.metrics()
    assert m["labelled"] == 0 and m["tp"] == 0
    for k in ("roc_auc", "average_precision", "log_loss", "brier", "ece", "precision", "recall", "f1",
              "positive_rate", "prediction_rate"):
        assert math.isnan(m[k]), k
    assert math.isnan(p.precision_at_k(3)) and math.isnan(p.roc_auc_bound())
    one_class = BinaryPerformance().update(np.array([0.2, 0.8]), np.array([1, 1]))
    assert math.isnan(one_class.roc_auc()) and one_class.average_precision() == 1.0


def test_parameters_checked_and_merges_refused_across_layouts():
    with pytest.raises(InvalidInputError):
        BinaryPerformance(bins=100)
    with pytest.raises(InvalidInputError):
        BinaryPerformance(scores="logit")
    with pytest.raises(IncompatibleSketchError):
        BinaryPerformance().merge(BinaryPerformance(bins=64))
    with pytest.raises(IncompatibleSketchError):
        BinaryPerformance().merge(BinaryPerformance(scores="margin"))


def test_decoder_rejects_corrupt_state():
    from fastdrift import codec
    p = BinaryPerformance(bins=4, exact=4).update(np.random.default_rng(0).random(100),
                                                  np.arange(100) % 2)
    _, params, payload = codec.decode(p.to_bytes())
    for bad in (payload[:-1], payload + b"\0", bytes([2]) + payload[1:], payload[:1] + b"\x07" + payload[2:]):
        with pytest.raises(CorruptStateError):
            BinaryPerformance.from_bytes(codec.encode(codec.Kind.BINARY_PERFORMANCE, params, bad))
    with pytest.raises(CorruptStateError):
        BinaryPerformance.from_bytes(codec.encode(codec.Kind.BINARY_PERFORMANCE, b"\x05" + params[1:], payload))


# -- sketch contract (hypothesis) -----------------------------------------------------------------

_score = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5000001, 0.9, 1.0, 1e-300, float("nan"), 1.2]),
                   st.floats(0.0, 1.0))
_rows = st.lists(st.tuples(_score, st.sampled_from([0, 1, 1, 0, 2, -1]), st.sampled_from([1.0, 0.5, 3.0, 0.0])),
                 max_size=60)


def _table(p):
    """Everything but the float sums and weights, which merge up to reassociation."""
    c = p.copy()
    c._sums[:] = 0
    if c._weights is not None:
        c._weights = np.where(c._counts > 0, 1.0, 0.0)
    if c._spread is not None:
        c._spread = np.zeros_like(c._spread)
    return c.to_bytes()


def _weights_close(a, b):
    for x, y in ((a._weights, b._weights), (a._spread, b._spread)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def _arrays(rows):
    s = np.array([r[0] for r in rows], dtype=np.float64)
    y = np.array([r[1] for r in rows], dtype=np.int64)
    w = np.array([r[2] for r in rows], dtype=np.float64)
    lab = pa.array(np.where(y < 0, 0, y), mask=y < 0)  # -1: a null label
    return s, lab, w


def _close(a, b):
    for k in a:
        assert (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k


@settings(max_examples=150, deadline=None)
@given(_rows, st.integers(0, 60), st.booleans(), st.sampled_from([1, 4, 128]), st.sampled_from([0, 3, None]))
def test_merge_of_any_split_equals_one_update(rows, cut, weighted, bins, exact):
    s, lab, w = _arrays(rows)
    w = w if weighted else None
    cut = min(cut, len(rows))
    kw = dict(bins=bins, exact=exact)
    one = BinaryPerformance(**kw).update(s, lab, w)
    a = BinaryPerformance(**kw).update(s[:cut], lab[:cut], None if w is None else w[:cut])
    b = BinaryPerformance(**kw).update(s[cut:], lab[cut:], None if w is None else w[cut:])
    merged = a.copy().merge(b)
    assert _table(merged) == _table(one)
    _weights_close(merged, one)
    assert merged.count == one.count == len(rows) and merged.rejected == one.rejected
    _close(merged.metrics(0.3), one.metrics(0.3))
    # two updates into one sketch are the same as the merge
    two = BinaryPerformance(**kw).update(s[:cut], lab[:cut], None if w is None else w[:cut])
    two.update(s[cut:], lab[cut:], None if w is None else w[cut:])
    assert _table(two) == _table(one)


@settings(max_examples=100, deadline=None)
@given(_rows, st.booleans(), st.sampled_from(["probability", "margin"]), st.sampled_from([2, 128]))
def test_bytes_round_trip_exact(rows, weighted, mode, bins):
    s, lab, w = _arrays(rows)
    if mode == "margin":
        s = (s - 0.5) * 1e3
    p = BinaryPerformance(scores=mode, bins=bins, exact=5).update(s, lab, w if weighted else None)
    q = BinaryPerformance.from_bytes(p.to_bytes())
    assert q == p and q.to_bytes() == p.to_bytes()
    _close(q.metrics(), p.metrics())
    assert q.copy() == p


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 1), st.integers(0, 4)), min_size=1, max_size=40),
       st.sampled_from([4, None]))
def test_integer_weights_equal_repeated_rows(rows, exact):
    s = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    k = np.array([r[2] for r in rows])
    p = BinaryPerformance(exact=exact).update(s, y, k.astype(float))
    q = BinaryPerformance(exact=exact).update(np.repeat(s, k), np.repeat(y, k))
    a, b = p.metrics(), q.metrics()
    a.pop("labelled"), b.pop("labelled")
    if p.is_exact == q.is_exact:
        _close(a, b)
    if k.sum() and len(set(y[k > 0])) == 2:
        assert p.roc_auc() == pytest.approx(roc_auc_score(y, s, sample_weight=k), abs=p.roc_auc_bound() + 1e-12)


# -- the kernel's bins ------------------------------------------------------------------------------

def _edge_scores(mode, rng):
    t = np.concatenate([2.0 ** rng.uniform(-75, -1, 5000), [0.0, 5e-324, 2.0 ** -64, np.nextafter(2.0 ** -64, 0),
                                                            0.25, np.nextafter(0.5, 0), 0.5]])
    if mode == "probability":
        return np.concatenate([t, 1.0 - t, [1.0, np.nextafter(1.0, 0)]])
    big = 2.0 ** rng.uniform(-75, 75, 5000)
    return np.concatenate([t, -t, big, -big, [2.0 ** 64, -(2.0 ** 64), 1e308, -1e308, -0.0]])


@pytest.mark.parametrize("mode", ["probability", "margin"])
@pytest.mark.parametrize("bins", [1, 8, 128, 1024])
def test_kernel_bins_match_the_layout(mode, bins):
    """The C kernel's bin of every score is the layout's (numpy) bin, and inside the bin's range."""
    from fastdrift.sketches.performance import bin_index, bin_ranges
    s = _edge_scores(mode, np.random.default_rng(bins))
    p = BinaryPerformance(scores=mode, bins=bins, exact=0).update(s, np.zeros(s.size, np.int8))
    assert not p.is_exact
    ix = bin_index(s, mode == "margin", bins)
    np.testing.assert_array_equal(p._counts[0], np.bincount(ix, minlength=p.n_bins))
    lo, hi, _ = bin_ranges(mode == "margin", bins)
    assert np.all((lo[ix] <= s) & (s <= hi[ix]))
    assert np.all(np.diff(ix[np.argsort(s, kind="stable")]) >= 0)  # monotone in the score


def test_fast_and_per_row_blocks_agree():
    """Blocks with a bad row take the per-row path: the sums agree with the vectorised blocks."""
    s, y, _ = _data("logistic", 100_000, seed=9)
    clean = BinaryPerformance().update(s, y)
    s2, y2 = s.copy(), y.copy()
    s2[::1024] = np.nan  # every other block has a bad row
    mixed = BinaryPerformance().update(np.concatenate([s2, s[::1024]]), np.concatenate([y2, y[::1024]]))
    assert mixed.rejected["score_nan"] == s[::1024].size
    for k in ("log_loss", "brier", "positive_rate", "roc_auc"):
        assert getattr(mixed, k)() == pytest.approx(getattr(clean, k)(), rel=1e-12), k


# -- estimated performance without labels (CBPE) ----------------------------------------------------

@pytest.mark.parametrize("mode", ["probability", "margin"])
def test_estimate_matches_realized_for_a_calibrated_classifier(mode):
    rng = np.random.default_rng(11)
    n = 200_000
    m = rng.normal(-0.5, 1.7, n)
    prob = _sigmoid(m)
    y = (rng.random(n) < prob).astype(np.int8)  # calibrated: labels drawn as Bernoulli(score)
    s = m if mode == "margin" else prob
    est = BinaryPerformance(scores=mode).update(s).estimate(0.5)  # scores alone, no labels
    real = BinaryPerformance(scores=mode).update(s, y).metrics(0.5)
    above = prob >= 0.5
    for k, var in (("tp", np.sum(prob[above] * (1 - prob[above]))), ("fn", np.sum(prob[~above] * (1 - prob[~above])))):
        assert abs(est[k] - real[k]) <= 5 * np.sqrt(var), k  # within sampling error
    assert est["tp"] + est["fp"] == real["tp"] + real["fp"]  # the predictions are the same rows
    assert abs(est["roc_auc"] - real["roc_auc"]) <= 0.005
    for k in ("precision", "recall", "f1", "accuracy", "positive_rate"):
        assert abs(est[k] - real[k]) <= 0.01, k
    # labelled rows can be estimated too, beside their realized metrics
    both = BinaryPerformance(scores=mode).update(s, y).estimate(0.5, labelled=True)
    assert both["roc_auc"] == pytest.approx(est["roc_auc"], rel=1e-12)


def test_estimate_miscalibrated_classifier_differs():
    """The estimate assumes calibration: over-confident scores overstate the AUC."""
    rng = np.random.default_rng(12)
    m = rng.normal(0, 1.0, 100_000)
    y = (rng.random(m.size) < _sigmoid(m)).astype(np.int8)
    over = BinaryPerformance(scores="margin").update(4 * m)
    real = BinaryPerformance(scores="margin").update(4 * m, y)
    assert over.estimate()["roc_auc"] > real.roc_auc() + 0.05
    assert math.isnan(BinaryPerformance().estimate()["roc_auc"])


@pytest.mark.parametrize("exact", [0, 50, None])
@pytest.mark.parametrize("weighted", [False, True])
def test_merge_of_large_splits_equals_one_update(exact, weighted):
    """Batches large enough for the kernel's scratch bins (and the exact table's fold into bins)."""
    rng = np.random.default_rng(13)
    n = 30_000
    piles = np.array([0.05, 0.2, 0.5, 0.8])[rng.integers(0, 4, n)]
    s = np.where(rng.random(n) < 0.997, piles, rng.random(n))  # ~90 distinct beyond the piles
    s[:3] = [np.nan, 2.0, 0.3000001]
    y = pa.array((rng.random(n) < s).astype(np.int8), mask=rng.random(n) < 0.05)
    w = rng.exponential(1.0, n) if weighted else None
    one = BinaryPerformance(exact=exact).update(s, y, w)
    for cuts in ([10_000], [2_500, 2_600, 29_000], [29_999]):
        bounds = [0, *cuts, n]
        parts = [BinaryPerformance(exact=exact).update(s[a:b], y[a:b], None if w is None else w[a:b])
                 for a, b in zip(bounds, bounds[1:])]
        merged = parts[0].copy()
        for p in parts[1:]:
            merged.merge(p)
        assert _table(merged) == _table(one)
        _weights_close(merged, one)
        _close(merged.metrics(), one.metrics())
    assert one.is_exact == (exact is None)


def test_sliced_arrow_with_nulls_reads_the_validity_at_its_offset():
    rng = np.random.default_rng(14)
    x = rng.random(5000)
    mask = rng.random(5000) < 0.1
    arr = pa.array(x, mask=mask).slice(123, 4000)
    lab = pa.array((rng.random(5000) < 0.5).astype(np.int8)).slice(123, 4000)
    p = BinaryPerformance(exact=0).update(arr, lab)
    keep = ~mask[123:4123]
    q = BinaryPerformance(exact=0).update(x[123:4123][keep], lab.to_numpy()[keep])
    assert p.null_count == int((~keep).sum())
    assert p.labelled == q.labelled
    assert p.roc_auc() == q.roc_auc() and p.log_loss() == pytest.approx(q.log_loss(), rel=1e-12)


def test_extreme_weights_and_margins_keep_the_state_serializable():
    p = BinaryPerformance(scores="margin").update(np.array([1e308, -1e308, 2.0, 3.0]), np.array([0, 1, 1, 0]),
                                                  np.array([1.0, 1.0, 1e300, 2.0 ** 64]))
    assert p.rejected["weight_invalid"] == 1 and p.labelled == 3
    assert p.log_loss() == np.inf
    q = BinaryPerformance.from_bytes(p.to_bytes())
    assert q == p and q.log_loss() == np.inf


@pytest.mark.parametrize("block", ["vectorised", "per-row"])
def test_log_loss_of_near_certain_right_answers_keeps_its_digits(block):
    """Losses of 1e-12 per row (a factor within 2^-17 of 1) are summed, not lost in a product."""
    rng = np.random.default_rng(15)
    n = 4096
    p = np.where(rng.random(n) < 0.5, 1e-12 * rng.random(n), 1 - 1e-6 * rng.random(n))
    y = (p > 0.5).astype(np.int8)
    m = np.where(y == 1, 1.0, -1.0) * rng.uniform(20, 60, n)
    if block == "per-row":  # a bad row in every block sends it down the per-row path
        p[::500], m[::500] = np.nan, np.nan
    keep = ~np.isnan(p)
    pk, mk, yk = p[keep], m[keep], y[keep]
    exact_p = np.mean(np.where(yk == 1, -np.log(pk), -np.log1p(-pk)))
    exact_m = np.mean(np.logaddexp(0.0, np.where(yk == 1, -mk, mk)))
    assert BinaryPerformance().update(p, y).log_loss() == pytest.approx(exact_p, rel=1e-12, abs=0)
    assert BinaryPerformance(scores="margin").update(m, y).log_loss() == pytest.approx(exact_m, rel=1e-12, abs=0)
