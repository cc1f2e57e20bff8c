"""Divergences against scipy and direct numpy formulas, plus alignment and errors.

The sketches themselves live elsewhere; the small stand-in classes below have
exactly the attributes :func:`fastdrift.metrics.align` documents.
"""
from __future__ import annotations

import math
import pickle
from dataclasses import FrozenInstanceError, dataclass
from typing import Any

import numpy as np
import pytest
import scipy.stats
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from fastdrift.errors import IncompatibleSketchError, InvalidInputError
from fastdrift.metrics import (
    MISSING,
    OTHER,
    ChiSquareResult,
    align,
    chi_square,
    hellinger,
    js_distance,
    js_divergence,
    kl_divergence,
    l_infinity,
    psi,
    psi_contributions,
    total_variation,
)
from fastdrift.metrics.divergence import _chi2_sf

SCALARS = [psi, kl_divergence, js_divergence, js_distance, hellinger, total_variation, l_infinity]
SYMMETRIC = [psi, js_divergence, js_distance, hellinger, total_variation, l_infinity]


@dataclass
class Hist:
    edges: Any
    counts: Any
    null_count: Any = 0
    nan_count: Any = 0


@dataclass
class Cat:
    categories: Any
    counts: Any
    other_count: Any = 0
    null_count: Any = 0


def props(counts) -> np.ndarray:
    a = np.asarray(counts, dtype=float)
    return a / a.sum()


def smooth(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    return np.where(p == 0, eps, p)


@st.composite
def count_pairs(draw, min_bins=1, max_bins=30, floats=False, allow_zero_bins=True):
    k = draw(st.integers(min_bins, max_bins))
    lo = 0 if allow_zero_bins else 1
    if floats:
        elem = st.floats(lo, 1e6, allow_nan=False, allow_infinity=False)
    else:
        elem = st.integers(lo, 10_000)
    r = draw(st.lists(elem, min_size=k, max_size=k))
    c = draw(st.lists(elem, min_size=k, max_size=k))
    assume(sum(r) > 0 and sum(c) > 0)
    return np.array(r, dtype=float), np.array(c, dtype=float)


# --------------------------------------------------------------------------
# KL against scipy.stats.entropy and the direct formula
# --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(count_pairs(allow_zero_bins=False))
def test_kl_equals_scipy_entropy_without_empty_bins(pair):
    r, c = pair
    # no zero proportions: smoothing does nothing and renormalisation is moot
    assume(np.all(props(r) > 0) and np.all(props(c) > 0))
    assert math.isclose(kl_divergence(r, c), scipy.stats.entropy(r, c), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(
        kl_divergence(r, c, base=2), scipy.stats.entropy(r, c, base=2), rel_tol=1e-9, abs_tol=1e-12
    )


@settings(max_examples=200, deadline=None)
@given(count_pairs(), st.sampled_from([1e-4, 1e-3, 1e-6]))
def test_kl_relation_to_scipy_entropy_of_smoothed_vectors(pair, eps):
    """scipy renormalises p~ and q~; ours does not. The identity that holds is
    KL = S_p * (entropy(p~, q~) - ln(S_q / S_p)) with S the smoothed sums."""
    r, c = pair
    ps, qs = smooth(props(r), eps), smooth(props(c), eps)
    s_p, s_q = ps.sum(), qs.sum()
    expected = s_p * (scipy.stats.entropy(ps, qs) - math.log(s_q / s_p))
    assert math.isclose(kl_divergence(r, c, eps=eps), expected, rel_tol=1e-8, abs_tol=1e-10)


@settings(max_examples=200, deadline=None)
@given(count_pairs(), st.sampled_from([None, 2, 10, math.e]))
def test_kl_unrenormalised_formula(pair, base):
    r, c = pair
    ps, qs = smooth(props(r)), smooth(props(c))
    direct = np.sum(ps * np.log(ps / qs)) / (1.0 if base is None else np.log(base))
    assert math.isclose(kl_divergence(r, c, base=base), direct, rel_tol=1e-12, abs_tol=1e-14)


def test_kl_direction_is_reference_to_current():
    r, c = [1, 2, 7], [5, 3, 2]
    p, q = props(r), props(c)
    assert math.isclose(kl_divergence(r, c), np.sum(p * np.log(p / q)))
    assert not math.isclose(kl_divergence(r, c), kl_divergence(c, r))


def test_kl_eps_zero():
    # reference empty where current has mass: the term is 0 (scipy agrees)
    assert math.isclose(kl_divergence([0, 5, 5], [2, 4, 4], eps=0), scipy.stats.entropy([0, 5, 5], [2, 4, 4]))
    # current empty where reference has mass: infinite, as scipy
    assert kl_divergence([2, 4, 4], [0, 5, 5], eps=0) == math.inf
    assert scipy.stats.entropy([2, 4, 4], [0, 5, 5]) == math.inf


def test_kl_can_be_marginally_negative_as_documented():
    # a proportion below eps on the reference, the matching current bin empty
    r, c = [1_000_000 - 1, 1], [1, 0]
    val = kl_divergence(r, c)
    assert -1e-4 * 2 < val < 0


# --------------------------------------------------------------------------
# JS against scipy.spatial.distance.jensenshannon
# --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.booleans().flatmap(lambda f: count_pairs(floats=f)), st.sampled_from([None, 2]))
def test_js_distance_equals_scipy(pair, base):
    r, c = pair
    ours = js_distance(r, c, base=base)
    with np.errstate(invalid="ignore"):
        theirs = jensenshannon(r, c, base=base)
    if math.isnan(theirs):
        # scipy takes the square root of a divergence that rounding made a tiny negative
        # (two distributions equal up to rounding): the distance there is 0.
        theirs = 0.0
    assert math.isclose(ours, theirs, rel_tol=1e-7, abs_tol=1e-7)
    assert math.isclose(js_divergence(r, c, base=base), ours**2, rel_tol=1e-12, abs_tol=1e-15)


@settings(max_examples=200, deadline=None)
@given(count_pairs())
def test_js_ranges(pair):
    r, c = pair
    assert 0 <= js_divergence(r, c) <= math.log(2) + 1e-12
    assert 0 <= js_divergence(r, c, base=2) <= 1 + 1e-12
    assert 0 <= js_distance(r, c) <= math.sqrt(math.log(2)) + 1e-12


def test_js_disjoint_supports_hit_the_maximum():
    assert math.isclose(js_divergence([1, 0], [0, 1]), math.log(2))
    assert math.isclose(js_distance([1, 0], [0, 1], base=2), 1.0)
    assert math.isclose(jensenshannon([1, 0], [0, 1], base=2), 1.0)


# --------------------------------------------------------------------------
# Hellinger / TV / L-infinity against numpy
# --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(count_pairs())
def test_bounded_metrics_match_numpy(pair):
    r, c = pair
    p, q = props(r), props(c)
    assert math.isclose(
        hellinger(r, c), np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / np.sqrt(2), rel_tol=1e-12, abs_tol=1e-15
    )
    assert math.isclose(total_variation(r, c), 0.5 * np.sum(np.abs(p - q)), rel_tol=1e-12, abs_tol=1e-15)
    assert l_infinity(r, c) == np.max(np.abs(p - q))
    for f in (hellinger, total_variation, l_infinity):
        assert 0.0 <= f(r, c) <= 1.0


def test_hellinger_matches_evidently_bc_form_to_its_precision():
    r, c = [5, 10, 20, 65], [10, 10, 30, 50]
    p, q = props(r), props(c)
    bc_form = math.sqrt(1 - np.clip(np.sum(np.sqrt(p * q)), 0, 1))
    assert abs(hellinger(r, c) - bc_form) < 1e-8


def test_disjoint_supports_give_one():
    for f in (hellinger, total_variation, l_infinity):
        assert f([3, 0, 0], [0, 2, 2]) == pytest.approx(1.0)
    assert l_infinity([3, 0, 0], [0, 1, 1]) == 1.0


# --------------------------------------------------------------------------
# chi-square against scipy
# --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(count_pairs(min_bins=2, max_bins=25))
def test_chi_square_contingency_equals_scipy(pair):
    r, c = pair
    keep = (r + c) > 0
    assume(keep.sum() >= 2)
    res = chi_square(r, c)
    ref = scipy.stats.chi2_contingency(np.vstack([r[keep], c[keep]]), correction=False)
    assert res.dof == ref.dof == keep.sum() - 1
    assert math.isclose(res.statistic, ref.statistic, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(res.pvalue, ref.pvalue, rel_tol=1e-7, abs_tol=1e-300)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=4, max_size=4))
def test_chi_square_yates_equals_scipy_default_on_2x2(cells):
    r, c = cells[:2], cells[2:]
    assume(sum(r) > 0 and sum(c) > 0 and all(a + b > 0 for a, b in zip(r, c)))
    res = chi_square(r, c, correction=True)
    ref = scipy.stats.chi2_contingency([r, c])  # correction=True is scipy's default
    assert res.dof == 1
    assert math.isclose(res.statistic, ref.statistic, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(res.pvalue, ref.pvalue, rel_tol=1e-7, abs_tol=1e-300)


def test_yates_is_off_unless_asked_and_ignored_beyond_two_bins():
    r, c = [12, 5], [7, 14]
    assert chi_square(r, c).statistic == pytest.approx(
        scipy.stats.chi2_contingency([r, c], correction=False).statistic
    )
    assert chi_square(r, c).statistic > chi_square(r, c, correction=True).statistic
    r3, c3 = [12, 5, 3], [7, 14, 9]
    assert chi_square(r3, c3, correction=True) == chi_square(r3, c3)


@settings(max_examples=200, deadline=None)
@given(count_pairs(min_bins=2, max_bins=25, allow_zero_bins=False))
def test_chi_square_gof_equals_scipy_chisquare(pair):
    r, c = pair
    expected = r / r.sum() * c.sum()
    res = chi_square(r, c, kind="gof")
    ref = scipy.stats.chisquare(c, f_exp=expected)
    assert res.dof == len(r) - 1
    assert math.isclose(res.statistic, ref.statistic, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(res.pvalue, ref.pvalue, rel_tol=1e-7, abs_tol=1e-300)


def test_chi_square_gof_unseen_category_is_infinite_like_evidently():
    res = chi_square([10, 10, 0], [5, 5, 1], kind="gof")
    assert res == ChiSquareResult(math.inf, 0.0, 2)


def test_chi_square_drops_bins_empty_on_both_sides():
    assert chi_square([10, 0, 20], [15, 0, 5]) == chi_square([10, 20], [15, 5])
    assert chi_square([10, 0, 20], [15, 0, 5]).dof == 1


def test_chi_square_single_bin_is_like_scipy():
    assert chi_square([5, 0], [7, 0]) == ChiSquareResult(0.0, 1.0, 0)
    ref = scipy.stats.chi2_contingency([[5], [7]])
    assert (ref.statistic, ref.pvalue, ref.dof) == (0.0, 1.0, 0)
    assert chi_square([5], [7], kind="gof") == ChiSquareResult(0.0, 1.0, 0)


def test_chi_square_result_is_frozen():
    res = chi_square([1, 2], [2, 1])
    with pytest.raises(FrozenInstanceError):
        res.statistic = 0.0  # type: ignore[misc]
    assert isinstance(res.dof, int) and isinstance(res.pvalue, float)


@pytest.mark.parametrize("dof", [1, 2, 3, 5, 10, 49, 50, 51, 200, 1000])
def test_chi2_tail_matches_scipy(dof):
    for x in [1e-6, 0.01, 0.5, 1, dof / 2, dof - 1, dof, dof + 1, dof + 2, 2 * dof, 5 * dof + 50, 700]:
        ours, theirs = _chi2_sf(x, dof), scipy.stats.chi2.sf(x, dof)
        assert math.isclose(ours, theirs, rel_tol=1e-10, abs_tol=1e-300), (x, dof, ours, theirs)
    assert _chi2_sf(0.0, dof) == 1.0 and _chi2_sf(math.inf, dof) == 0.0


# --------------------------------------------------------------------------
# PSI: the industry convention end to end, and properties
# --------------------------------------------------------------------------


def _industry_psi(ref: np.ndarray, cur: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The industry (credit-scoring) PSI of docs/conventions.md, written out with numpy only."""
    inner = np.unique(np.quantile(ref, np.linspace(0.1, 0.9, 9)))
    # left-closed [a, b) with open outer bins: the bin index is the number of
    # inner edges <= x (computed by broadcasting, not by the code under test)
    idx_r = (ref[:, None] >= inner[None, :]).sum(axis=1)
    idx_c = (cur[:, None] >= inner[None, :]).sum(axis=1)
    n_bins = inner.size + 1
    cnt_r = np.bincount(idx_r, minlength=n_bins)
    cnt_c = np.bincount(idx_c, minlength=n_bins)
    p, q = cnt_r / cnt_r.sum(), cnt_c / cnt_c.sum()
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    return float(np.sum((q - p) * np.log(q / p))), inner, cnt_r, cnt_c


@pytest.mark.parametrize(
    "shift, scale, integer",
    [(0.0, 1.0, False), (0.2, 1.0, False), (1.0, 1.5, False), (8.0, 1.0, False), (0.0, 1.0, True)],
)
def test_industry_psi_end_to_end(shift, scale, integer):
    rng = np.random.default_rng(20261)
    ref = rng.normal(0.0, 1.0, 4000)
    cur = rng.normal(shift, scale, 2500)
    if integer:  # ties collapse deciles, exercising np.unique on the edges
        ref, cur = np.round(ref * 2), np.round(cur * 2)
    expected, inner, cnt_r, cnt_c = _industry_psi(ref, cur)
    assert math.isclose(psi(cnt_r, cnt_c), expected, rel_tol=1e-12, abs_tol=1e-15)
    # the same counts presented as a histogram with open outer bins
    h_r, h_c = Hist(inner, cnt_r, null_count=3), Hist(inner, cnt_c, nan_count=1)
    assert math.isclose(psi(h_r, h_c), expected, rel_tol=1e-12, abs_tol=1e-15)
    assert math.isclose(float(np.sum(psi_contributions(h_r, h_c))), expected, rel_tol=1e-12, abs_tol=1e-15)
    if shift == 8.0:
        assert expected > 5  # disjoint supports: large but finite thanks to eps


def test_psi_equals_evidently_when_its_floor_is_1e4():
    r, c = [120, 300, 0, 580], [0, 250, 400, 350]
    p, q = props(r), props(c)
    # evidently's feel_zeroes: floor = min_nonzero/1e6 if min_nonzero <= 1e-4 else 1e-4
    fill = lambda v: np.where(v == 0, (v[v > 0].min() / 1e6) if v[v > 0].min() <= 1e-4 else 1e-4, v)  # noqa: E731
    pe, qe = fill(p), fill(q)
    assert math.isclose(psi(r, c), np.sum((pe - qe) * np.log(pe / qe)), rel_tol=1e-12)


@settings(max_examples=300, deadline=None)
@given(count_pairs())
def test_psi_identity_and_non_negative(pair):
    r, c = pair
    assert psi(r, r) == 0.0
    assert psi(r, c) >= 0.0
    contrib = psi_contributions(r, c)
    assert np.all(contrib >= 0)
    assert math.isclose(float(contrib.sum()), psi(r, c), rel_tol=1e-12, abs_tol=1e-15)


@settings(max_examples=300, deadline=None)
@given(count_pairs(floats=True))
def test_symmetry(pair):
    r, c = pair
    for f in SYMMETRIC:
        assert math.isclose(f(r, c), f(c, r), rel_tol=1e-9, abs_tol=1e-12), f.__name__


@settings(max_examples=100, deadline=None)
@given(count_pairs(), st.integers(2, 7))
def test_scale_invariance(pair, k):
    r, c = pair
    for f in SCALARS:
        assert math.isclose(f(r, c), f(r * k, c), rel_tol=1e-9, abs_tol=1e-12), f.__name__


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=20).filter(lambda v: sum(v) > 0))
def test_identical_inputs_give_zero(v):
    for f in SCALARS:
        assert f(v, v) == 0.0, f.__name__


def test_psi_eps_zero_is_infinite_on_one_sided_empty_bins():
    assert psi([0, 5, 5], [1, 5, 5], eps=0) == math.inf
    assert psi([1, 5, 5], [0, 5, 5], eps=0) == math.inf
    assert psi([0, 5, 5], [0, 4, 6], eps=0) == pytest.approx(psi([5, 5], [4, 6], eps=0))
    contrib = psi_contributions([0, 5, 0], [1, 5, 0], eps=0)
    assert contrib[0] == math.inf and contrib[2] == 0.0


def test_psi_eps_value_is_used():
    r, c = [0, 50, 50], [10, 45, 45]
    for eps in (1e-4, 1e-2):
        p, q = smooth(props(r), eps), smooth(props(c), eps)
        assert math.isclose(psi(r, c, eps=eps), np.sum((q - p) * np.log(q / p)), rel_tol=1e-12)


def test_plain_lists_and_int_dtypes():
    assert psi([1, 2, 3], [3, 2, 1]) == psi(np.array([1, 2, 3], np.uint8), np.array([3.0, 2.0, 1.0]))


# --------------------------------------------------------------------------
# alignment of sketches
# --------------------------------------------------------------------------


def test_align_vectors_labels_are_indices():
    r, c, labels = align([1, 2], [3, 4])
    assert labels == (0, 1)
    assert r.dtype == c.dtype == np.float64
    # include_missing has nothing to add for plain vectors
    assert align([1, 2], [3, 4], include_missing=True)[2] == (0, 1)


def test_align_categoricals_with_disjoint_categories():
    ref = Cat(["a", "b"], [10, 30])
    cur = Cat(["c", "d", "e"], [1, 2, 3])
    r, c, labels = align(ref, cur)
    assert labels == ("a", "b", "c", "d", "e")
    assert r.tolist() == [10, 30, 0, 0, 0]
    assert c.tolist() == [0, 0, 1, 2, 3]
    assert total_variation(ref, cur) == 1.0
    assert hellinger(ref, cur) == pytest.approx(1.0)
    assert js_distance(ref, cur, base=2) == pytest.approx(1.0)
    assert math.isfinite(psi(ref, cur)) and psi(ref, cur) > 5


def test_align_categoricals_overlap_order_other_and_missing():
    ref = Cat(["x", "y", "z"], [5, 0, 5], other_count=0, null_count=2)
    cur = Cat(["z", "w", "x"], [1, 7, 2], other_count=4, null_count=0)
    r, c, labels = align(ref, cur)
    assert labels == ("x", "y", "z", "w", OTHER)
    assert r.tolist() == [5, 0, 5, 0, 0]
    assert c.tolist() == [2, 0, 1, 7, 4]
    r, c, labels = align(ref, cur, include_missing=True)
    assert labels[-1] is MISSING and labels[-2] is OTHER
    assert (r[-1], c[-1]) == (2, 0)


def test_other_bin_only_when_non_zero_somewhere():
    assert OTHER not in align(Cat(["a"], [1]), Cat(["a"], [2]))[2]
    assert OTHER in align(Cat(["a"], [1], other_count=1), Cat(["a"], [2]))[2]


def test_categorical_nan_count_is_used_when_present():
    ref = Cat(["a"], [4], null_count=1)
    ref.nan_count = 2  # type: ignore[attr-defined]
    r, _, _ = align(ref, Cat(["a"], [4]), include_missing=True)
    assert r.tolist() == [4, 3]


def test_categorical_against_matching_vectors():
    ref, cur = Cat(["a", "b", "c"], [1, 2, 7]), Cat(["c", "a"], [3, 3], other_count=4)
    for f in SCALARS + [lambda a, b: chi_square(a, b).statistic]:
        assert f(ref, cur) == f([1, 2, 7, 0], [3, 0, 3, 4])


def test_align_histograms_missing_bin():
    edges = [0.0, 1.0, 2.0]
    ref, cur = Hist(edges, [3, 4], null_count=1, nan_count=2), Hist(edges, [5, 5], null_count=0, nan_count=6)
    r, c, labels = align(ref, cur)
    assert labels == ((0.0, 1.0), (1.0, 2.0))
    assert r.tolist() == [3, 4] and c.tolist() == [5, 5]
    r, c, labels = align(ref, cur, include_missing=True)
    assert labels[-1] is MISSING
    assert r.tolist() == [3, 4, 3] and c.tolist() == [5, 5, 6]
    assert psi(ref, cur, include_missing=True) == psi([3, 4, 3], [5, 5, 6])


def test_align_histograms_open_outer_bins():
    _, _, labels = align(Hist([0.0, 1.0], [1, 2, 3]), Hist([0.0, 1.0], [3, 2, 1]))
    assert labels == ((-math.inf, 0.0), (0.0, 1.0), (1.0, math.inf))


def test_histogram_edge_mismatch_names_both():
    ref, cur = Hist([0.0, 1.0, 2.0], [1, 1]), Hist([0.0, 1.5, 2.0], [1, 1])
    with pytest.raises(IncompatibleSketchError, match=r"reference \[0\., 1\., 2\.\], current \[0\. *, 1\.5, 2\. *\].*index 1: 1\.0 vs 1\.5"):
        psi(ref, cur)
    with pytest.raises(IncompatibleSketchError, match=r"reference .*3 edges.*current .*4 edges|reference \[.*\], current \[.*\]"):
        psi(Hist([0, 1, 2], [1, 1]), Hist([0, 1, 2, 3], [1, 1, 1]))
    many = np.linspace(0, 1, 11)
    with pytest.raises(IncompatibleSketchError, match=r"11 edges \[0, 0\.1, \.\.\., 0\.9, 1\].*11 edges \[0, 0\.1, \.\.\., 0\.9, 2\]"):
        psi(Hist(many, np.ones(10)), Hist(np.append(many[:-1], 2.0), np.ones(10)))


def test_histogram_counts_length_must_fit_edges():
    with pytest.raises(InvalidInputError, match="must have 2 counts .* or 4"):
        psi(Hist([0, 1, 2], [1, 1, 1]), Hist([0, 1, 2], [1, 1, 1]))
    with pytest.raises(IncompatibleSketchError, match="2 reference counts vs 4 current"):
        psi(Hist([0, 1, 2], [1, 1]), Hist([0, 1, 2], [1, 1, 1, 1]))


def test_mixed_kinds_are_incompatible():
    with pytest.raises(IncompatibleSketchError, match="histogram reference .* categorical current"):
        align(Hist([0, 1], [1]), Cat(["a"], [1]))
    with pytest.raises(IncompatibleSketchError, match="vector"):
        psi([1, 2], Cat(["a", "b"], [1, 2]))


def test_only_missing_values_gives_a_hint():
    ref, cur = Hist([0, 1], [0], null_count=5), Hist([0, 1], [3])
    with pytest.raises(InvalidInputError, match="reference has no counts .*include_missing=True"):
        psi(ref, cur)
    # counted as a bin, the same data is a valid (maximal) shift
    assert total_variation(ref, cur, include_missing=True) == 1.0


def test_sentinels_pickle_by_identity():
    assert pickle.loads(pickle.dumps(OTHER)) is OTHER
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert repr(OTHER) == "<other>" and repr(MISSING) == "<missing>"


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

ALL = SCALARS + [psi_contributions, chi_square]


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "ref, cur, message",
    [
        ([1, -1], [1, 1], r"reference counts must be non-negative, got -1 at index 1"),
        ([1, 1], [1, np.nan], r"current counts must be finite, got nan at index 1"),
        ([1, 1], [np.inf, 1], r"current counts must be finite, got inf at index 0"),
        ([1, 2, 3], [1, 2], r"same length, got 3 reference bins and 2 current"),
        ([[1, 2]], [[1, 2]], r"reference counts must be 1-D, got shape \(1, 2\)"),
        (["a", "b"], [1, 2], r"reference counts must be integer or float counts"),
        ([True, False], [1, 2], r"reference counts must be integer or float"),
        ([1, None], [1, 2], r"reference counts must be integer or float"),
        ([], [], r"both reference and current are empty"),
        ([0, 0], [0, 0], r"both reference and current are empty"),
        ([0, 0], [1, 2], r"^reference has no counts"),
        ([1, 2], [0, 0], r"^current has no counts"),
        ([[1, 2], [3]], [1, 2], r"reference counts"),
    ],
)
def test_bad_counts(f, ref, cur, message):
    with pytest.raises(InvalidInputError, match=message):
        f(ref, cur)


@pytest.mark.parametrize("f", [psi, psi_contributions, kl_divergence, js_divergence, js_distance, hellinger, total_variation, l_infinity])
@pytest.mark.parametrize("eps", [-1e-4, 1.0, 2.0, math.nan, math.inf, "1e-4", None, True])
def test_bad_eps(f, eps):
    with pytest.raises(InvalidInputError, match="eps"):
        f([1, 2], [2, 1], eps=eps)


@pytest.mark.parametrize("f", [kl_divergence, js_divergence, js_distance])
@pytest.mark.parametrize("base", [0, 1, -2, math.inf, math.nan, "2", True])
def test_bad_base(f, base):
    with pytest.raises(InvalidInputError, match="base"):
        f([1, 2], [2, 1], base=base)


def test_bad_chi_square_options():
    with pytest.raises(InvalidInputError, match="kind must be"):
        chi_square([1, 2], [2, 1], kind="g-test")
    with pytest.raises(InvalidInputError, match="contingency' only"):
        chi_square([1, 2], [2, 1], kind="gof", correction=True)
    with pytest.raises(InvalidInputError, match="correction must be a bool"):
        chi_square([1, 2], [2, 1], correction=1)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
def test_include_missing_must_be_bool(f):
    with pytest.raises(InvalidInputError, match="include_missing"):
        f([1, 2], [2, 1], include_missing="yes")


def test_bad_sketch_contents():
    with pytest.raises(InvalidInputError, match="reference categories contain 'a' more than once"):
        psi(Cat(["a", "b", "a"], [1, 2, 3]), Cat(["a"], [1]))
    with pytest.raises(InvalidInputError, match="current sketch has 2 categories but 1 counts"):
        psi(Cat(["a"], [1]), Cat(["a", "b"], [1]))
    with pytest.raises(InvalidInputError, match="hashable"):
        psi(Cat([["a"]], [1]), Cat(["a"], [1]))
    with pytest.raises(InvalidInputError, match="current other_count must be a finite non-negative number, got -1"):
        psi(Cat(["a"], [1]), Cat(["a"], [1], other_count=-1))
    with pytest.raises(InvalidInputError, match="reference null_count must be a finite"):
        psi(Hist([0, 1], [1], null_count=math.nan), Hist([0, 1], [1]), include_missing=True)
    with pytest.raises(InvalidInputError, match="reference counts must be non-negative"):
        psi(Hist([0, 1], [-1]), Hist([0, 1], [1]))
    with pytest.raises(InvalidInputError, match="edges must be a 1-D numeric array"):
        psi(Hist(["a", "b"], [1]), Hist(["a", "b"], [1]))
