r"""Divergences between a reference and a current distribution of counts.

Every function takes ``(reference, current, *, include_missing=False, ...)``
where each side is either a plain count vector or a sketch, lines the two up
with :func:`align`, turns counts into proportions

.. math:: p_i = r_i / \sum_j r_j, \qquad q_i = c_i / \sum_j c_j

and returns a plain ``float`` (``chi_square`` returns a small record). There is
no hidden binning: the bins are whatever the vectors or sketches hold, so the
same two sketches always give the same number.

Conventions
-----------
Peer libraries use the same names for different numbers (see
``docs/conventions.md``); fastdrift fixes one meaning per function:

==================  ==================================================  =========
function            definition                                          range
==================  ==================================================  =========
``psi``             :math:`\sum (q_i-p_i)\ln(q_i/p_i)`, eps-smoothed     [0, inf)
``kl_divergence``   :math:`\sum p_i\ln(p_i/q_i)` = KL(ref‖cur)           see notes
``js_divergence``   :math:`\tfrac12 KL(p‖m)+\tfrac12 KL(q‖m)`, m=(p+q)/2 [0, ln 2]
``js_distance``     ``sqrt(js_divergence)`` (scipy's ``jensenshannon``)  [0, √ln2]
``hellinger``       :math:`\sqrt{\sum(\sqrt{p_i}-\sqrt{q_i})^2}/\sqrt2`  [0, 1]
``total_variation`` :math:`\tfrac12\sum|p_i-q_i|`                        [0, 1]
``l_infinity``      :math:`\max|p_i-q_i|`                                [0, 1]
``chi_square``      Pearson 2×k homogeneity test (or ``kind="gof"``)     --
==================  ==================================================  =========

(JS ranges are for the natural log; with ``base=2`` both are in [0, 1].)

Empty bins: ``psi`` and ``kl_divergence`` replace a zero proportion (either
side) by ``eps=1e-4`` without renormalising, the credit-scoring convention;
``eps=0`` disables it. The bounded metrics need none and default to ``eps=0``.
Null and NaN counts of sketches are left out unless ``include_missing=True``
adds them as one extra bin (missingness drift).

Cost: one pass over the bins, O(k) time and memory; ``align`` of two
categorical sketches is O(k) with a dict over the labels.

Examples
--------
>>> round(psi([10, 20, 30, 40], [40, 30, 20, 10]), 6)
0.91287
>>> round(js_distance([10, 20, 30, 40], [40, 30, 20, 10], base=2), 6)
0.391868
>>> chi_square([10, 20, 30], [30, 20, 10]).dof
2
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from numbers import Real
from typing import Any, Optional

import numpy as np

from ..errors import IncompatibleSketchError, InvalidInputError

__all__ = [
    "OTHER",
    "MISSING",
    "align",
    "psi",
    "psi_contributions",
    "psi_terms",
    "kl_divergence",
    "js_divergence",
    "js_distance",
    "hellinger",
    "total_variation",
    "l_infinity",
    "chi_square",
    "ChiSquareResult",
]


class _Sentinel:
    """A bin label that cannot collide with any user category."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<{self._name.lower()}>"

    def __reduce__(self) -> str:
        # pickles by reference, so the identity survives a round trip
        return self._name


OTHER = _Sentinel("OTHER")
"""Label of the bin pooling a categorical sketch's ``other_count``."""

MISSING = _Sentinel("MISSING")
"""Label of the bin for null + NaN counts when ``include_missing=True``."""


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------


def _counts(values: Any, what: str) -> np.ndarray:
    """A validated 1-D float64 copy of a count vector."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nested lists and the like
        raise InvalidInputError(f"{what} is not a 1-D array of counts: {exc}") from None
    if arr.dtype.kind not in "iuf":
        raise InvalidInputError(
            f"{what} must be integer or float counts, got dtype {arr.dtype}"
        )
    if arr.ndim != 1:
        raise InvalidInputError(f"{what} must be 1-D, got shape {arr.shape}")
    out = arr.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(f"{what} must be finite, got {arr[i]} at index {i}")
    neg = out < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise InvalidInputError(f"{what} must be non-negative, got {arr[i]} at index {i}")
    return out


def _scalar_count(value: Any, what: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.integer, np.floating)):
        raise InvalidInputError(f"{what} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise InvalidInputError(f"{what} must be a finite non-negative number, got {value!r}")
    return v


def _sketch_kind(obj: Any) -> str:
    if isinstance(obj, np.ndarray):  # count vectors (column_drift's): no attribute lookups that fail
        return "vector"
    if all(hasattr(obj, a) for a in ("categories", "counts")):
        return "categorical"
    if all(hasattr(obj, a) for a in ("edges", "counts")):
        return "histogram"
    return "vector"


def _missing(obj: Any, side: str) -> float:
    return _scalar_count(getattr(obj, "null_count", 0), f"{side} null_count") + _scalar_count(
        getattr(obj, "nan_count", 0), f"{side} nan_count"
    )


def _describe_edges(edges: np.ndarray) -> str:
    if edges.size <= 6:
        return np.array2string(edges, separator=", ")
    return (
        f"{edges.size} edges [{edges[0]:g}, {edges[1]:g}, ..., {edges[-2]:g}, {edges[-1]:g}]"
    )


def _align_histograms(ref: Any, cur: Any, include_missing: bool):
    e_ref = _counts_edges(ref.edges, "reference edges")
    e_cur = _counts_edges(cur.edges, "current edges")
    if e_ref.shape != e_cur.shape or not np.array_equal(e_ref, e_cur):
        detail = ""
        if e_ref.shape == e_cur.shape:
            i = int(np.flatnonzero(e_ref != e_cur)[0])
            detail = f"; first difference at index {i}: {float(e_ref[i])!r} vs {float(e_cur[i])!r}"
        raise IncompatibleSketchError(
            "histograms have different bin edges: reference "
            f"{_describe_edges(e_ref)}, current {_describe_edges(e_cur)}{detail}; "
            "build the current histogram with the reference's edges"
        )
    r = _counts(ref.counts, "reference counts")
    c = _counts(cur.counts, "current counts")
    n_edges = e_ref.size
    if r.size != c.size:
        raise IncompatibleSketchError(
            f"histograms have equal edges but {r.size} reference counts vs {c.size} current counts"
        )
    if r.size == n_edges - 1:
        bounds = e_ref
    elif r.size == n_edges + 1:
        # counts include the open underflow and overflow bins
        bounds = np.concatenate(([-np.inf], e_ref, [np.inf]))
    else:
        raise InvalidInputError(
            f"a histogram with {n_edges} edges must have {n_edges - 1} counts "
            f"(closed range) or {n_edges + 1} (open outer bins), got {r.size}"
        )
    labels = [(float(bounds[i]), float(bounds[i + 1])) for i in range(r.size)]
    if include_missing:
        r = np.append(r, _missing(ref, "reference"))
        c = np.append(c, _missing(cur, "current"))
        labels.append(MISSING)
    return r, c, tuple(labels)


def _counts_edges(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.ndim != 1:
        raise InvalidInputError(f"{what} must be a 1-D numeric array, got {arr.dtype} of shape {arr.shape}")
    return arr.astype(np.float64)


def _category_map(obj: Any, side: str) -> tuple[list, np.ndarray]:
    cats = list(obj.categories)
    counts = _counts(obj.counts, f"{side} counts")
    if len(cats) != counts.size:
        raise InvalidInputError(
            f"{side} sketch has {len(cats)} categories but {counts.size} counts"
        )
    try:
        distinct = len(set(cats))
    except TypeError as exc:
        raise InvalidInputError(f"{side} categories must be hashable: {exc}") from None
    if distinct != len(cats):
        seen: set = set()
        dup = next(c for c in cats if c in seen or seen.add(c))
        raise InvalidInputError(f"{side} categories contain {dup!r} more than once")
    return cats, counts


def _align_categoricals(ref: Any, cur: Any, include_missing: bool):
    cats_r, counts_r = _category_map(ref, "reference")
    cats_c, counts_c = _category_map(cur, "current")
    # reference order first, then categories only the current batch has, so
    # the bin order is stable across batches for the same reference
    index = {cat: i for i, cat in enumerate(cats_r)}
    for cat in cats_c:
        if cat not in index:
            index[cat] = len(index)
    r = np.zeros(len(index))
    c = np.zeros(len(index))
    r[: len(cats_r)] = counts_r
    if cats_c:
        c[[index[cat] for cat in cats_c]] = counts_c
    labels = list(index)
    other_r = _scalar_count(getattr(ref, "other_count", 0), "reference other_count")
    other_c = _scalar_count(getattr(cur, "other_count", 0), "current other_count")
    if other_r > 0 or other_c > 0:
        r = np.append(r, other_r)
        c = np.append(c, other_c)
        labels.append(OTHER)
    if include_missing:
        r = np.append(r, _missing(ref, "reference"))
        c = np.append(c, _missing(cur, "current"))
        labels.append(MISSING)
    return r, c, tuple(labels)


def align(
    reference: Any, current: Any, include_missing: bool = False
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Line up two count vectors or two sketches bin by bin.

    Parameters
    ----------
    reference, current
        Both of the same shape, one of:

        * **count vectors** (list or 1-D array of non-negative finite ints or
          floats) of equal length; the labels are the indices ``0..k-1``.
          They carry no missing counts, so ``include_missing`` has no effect.
        * **histograms**: objects with ``edges``, ``counts``, ``null_count``
          and ``nan_count``. The edges must be identical. ``counts`` has
          ``len(edges) - 1`` entries (labels ``(lo, hi)``) or
          ``len(edges) + 1`` when it includes the open underflow/overflow
          bins (outer labels use ``-inf``/``inf``).
        * **categoricals**: objects with ``categories``, ``counts``,
          ``other_count`` and ``null_count`` (``nan_count`` is used if
          present). Bins are the union of the labels, reference order first;
          a category absent on one side counts zero there. The ``other``
          counts form one extra bin, labelled :data:`OTHER`, when non-zero on
          either side.
    include_missing : bool, default False
        For sketches, append one bin labelled :data:`MISSING` holding
        ``null_count + nan_count`` of each side; otherwise missing values are
        left out.

    Returns
    -------
    ref_counts, cur_counts : numpy.ndarray
        float64 arrays of equal length.
    labels : tuple
        One label per bin.

    Raises
    ------
    InvalidInputError
        Negative, NaN or infinite counts, non-numeric or non-1-D input, or
        vectors of different lengths.
    IncompatibleSketchError
        Sketches of different kinds, or histograms with different edges.

    Notes
    -----
    Empty sides are allowed here; the divergence functions reject them.

    Examples
    --------
    >>> class Cat:
    ...     def __init__(self, categories, counts, other_count=0, null_count=0):
    ...         self.categories, self.counts = categories, counts
    ...         self.other_count, self.null_count = other_count, null_count
    >>> r, c, labels = align(Cat(["a", "b"], [5, 5]), Cat(["b", "c"], [4, 6], other_count=1))
    >>> labels
    ('a', 'b', 'c', <other>)
    >>> r.tolist(), c.tolist()
    ([5.0, 5.0, 0.0, 0.0], [0.0, 4.0, 6.0, 1.0])
    """
    if not isinstance(include_missing, (bool, np.bool_)):
        raise InvalidInputError(f"include_missing must be a bool, got {include_missing!r}")
    kind_r, kind_c = _sketch_kind(reference), _sketch_kind(current)
    if kind_r != kind_c:
        raise IncompatibleSketchError(
            f"cannot compare a {kind_r} reference ({type(reference).__name__}) "
            f"with a {kind_c} current ({type(current).__name__})"
        )
    if kind_r == "histogram":
        return _align_histograms(reference, current, bool(include_missing))
    if kind_r == "categorical":
        return _align_categoricals(reference, current, bool(include_missing))
    r = _counts(reference, "reference counts")
    c = _counts(current, "current counts")
    if r.size != c.size:
        raise InvalidInputError(
            f"count vectors must have the same length, got {r.size} reference bins "
            f"and {c.size} current bins"
        )
    return r, c, tuple(range(r.size))


def _prepare(reference: Any, current: Any, include_missing: bool):
    r, c, labels = align(reference, current, include_missing)
    tot_r, tot_c = float(r.sum()), float(c.sum())
    if tot_r == 0 and tot_c == 0:
        raise InvalidInputError("both reference and current are empty (no counts)")
    for side, total in (("reference", tot_r), ("current", tot_c)):
        if total == 0:
            hint = ""
            obj = reference if side == "reference" else current
            if not include_missing and _sketch_kind(obj) != "vector" and _missing(obj, side) > 0:
                hint = " (it holds only missing values; pass include_missing=True to count them)"
            raise InvalidInputError(
                f"{side} has no counts (total 0){hint}; a divergence needs mass on both sides"
            )
    return r, c, tot_r, tot_c, labels


def _check_eps(eps: Any) -> float:
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (Real, np.floating, np.integer)):
        raise InvalidInputError(f"eps must be a number, got {type(eps).__name__}")
    eps = float(eps)
    if not (0.0 <= eps < 1.0):
        raise InvalidInputError(f"eps must be in [0, 1), got {eps!r}")
    return eps


def _log_scale(base: Any) -> float:
    if base is None:
        return 1.0
    if isinstance(base, (bool, np.bool_)) or not isinstance(base, (Real, np.floating, np.integer)):
        raise InvalidInputError(f"base must be a number or None, got {type(base).__name__}")
    b = float(base)
    if not math.isfinite(b) or b <= 0 or b == 1:
        raise InvalidInputError(f"base must be positive, finite and not 1, got {base!r}")
    return math.log(b)


def _proportions(reference, current, include_missing, eps):
    eps = _check_eps(eps)
    r, c, tot_r, tot_c, _ = _prepare(reference, current, include_missing)
    p = r / tot_r
    q = c / tot_c
    if eps > 0:
        p = np.where(p == 0, eps, p)
        q = np.where(q == 0, eps, q)
    return p, q


_FLOAT_TINY = np.finfo(np.float64).tiny


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a/b) for positive a, b, without overflow warnings.

    ln(a/b) keeps full precision when a ≈ b (where ln a - ln b would cancel),
    but a/b overflows or goes subnormal for extreme ratios of tiny counts; only
    those elements fall back to the difference of logs.
    """
    with np.errstate(over="ignore", under="ignore"):
        ratio = a / b
    bad = ~(ratio >= _FLOAT_TINY) | np.isinf(ratio)
    if bad.any():
        ratio[bad] = 1.0
        out = np.log(ratio)
        out[bad] = np.log(a[bad]) - np.log(b[bad])
        return out
    return np.log(ratio)


def _xlogy_ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise x·ln(x/y) with 0·ln(0/y) = 0 and x·ln(x/0) = inf (x > 0)."""
    out = np.zeros_like(x)
    pos = x > 0
    both = pos & (y > 0)
    out[both] = x[both] * _log_ratio(x[both], y[both])
    out[pos & (y == 0)] = np.inf
    return out


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------

# Parameter blocks the metric docstrings share; a line ``%(name)s`` in a
# docstring is replaced by the block, indented like the line.
_DOC_PARAMS = {
    "sides": """reference, current
    Count vectors or sketches, see :func:`align`.
include_missing : bool, default False
    Count nulls/NaN as their own bin (sketches only).""",
    "eps_psi": """eps : float, default 1e-4
    Replacement for zero proportions on either side, in [0, 1), without
    renormalising. ``eps=0`` disables it: a bin empty on exactly one side
    then contributes ``inf``, a bin empty on both sides 0.""",
    "eps_unneeded": """eps : float, default 0
    Optional zero replacement as in :func:`psi`; not needed, the metric is
    finite with empty bins.""",
    "base": """base : float, optional
    Logarithm base; natural log by default (nats), 2 for bits.""",
}
_DOC_SLOT = re.compile(r"^( *)%\((\w+)\)s$", re.MULTILINE)


def _doc(func):
    """Fill the ``%(name)s`` lines of ``func``'s docstring from :data:`_DOC_PARAMS`."""
    if func.__doc__:
        func.__doc__ = _DOC_SLOT.sub(
            lambda m: "\n".join(m.group(1) + line if line else line
                                for line in _DOC_PARAMS[m.group(2)].splitlines()),
            func.__doc__,
        )
    return func



@_doc
def psi_contributions(
    reference: Any, current: Any, *, include_missing: bool = False, eps: float = 1e-4
) -> np.ndarray:
    r"""Per-bin terms of the population stability index; they sum to :func:`psi`.

    .. math:: t_i = (\tilde q_i - \tilde p_i)\,\ln(\tilde q_i / \tilde p_i)

    where :math:`\tilde p, \tilde q` are the proportions with zeros replaced
    by ``eps``. Every term is >= 0, so the largest terms point at the bins
    that moved.

    Parameters
    ----------
    %(sides)s
    %(eps_psi)s

    Returns
    -------
    numpy.ndarray
        float64, one term per bin in the order of :func:`align`'s labels.

    Raises
    ------
    InvalidInputError
        Bad counts (see :func:`align`), an empty side, or a bad ``eps``.
    IncompatibleSketchError
        Sketches that cannot be aligned.
    """
    return psi_terms(*_proportions(reference, current, include_missing, eps))


def psi_terms(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The PSI terms of proportions ``p``, ``q`` (float64 arrays of one shape, zeros already
    replaced as wanted): :func:`psi_contributions` without validation, elementwise, so a stack of
    columns (one row each) gives every column's terms at once."""
    out = np.empty_like(p)
    both = (p > 0) & (q > 0)
    out[both] = (q[both] - p[both]) * _log_ratio(q[both], p[both])
    out[(p == 0) & (q == 0)] = 0.0
    out[(p == 0) != (q == 0)] = np.inf
    return out


@_doc
def psi(
    reference: Any, current: Any, *, include_missing: bool = False, eps: float = 1e-4
) -> float:
    r"""Population stability index.

    .. math:: \mathrm{PSI} = \sum_i (\tilde q_i - \tilde p_i)\,\ln(\tilde q_i/\tilde p_i)

    with :math:`\tilde p_i = \max(p_i, \epsilon)` for zero proportions only
    (no renormalisation). PSI is symmetric in its arguments and >= 0.

    Parameters
    ----------
    %(sides)s
    %(eps_psi)s

    Returns
    -------
    float

    Raises
    ------
    InvalidInputError, IncompatibleSketchError
        See :func:`psi_contributions`.

    Notes
    -----
    On the same bins this is exactly the industry/credit-scoring PSI
    (reference deciles, eps 1e-4; see ``docs/conventions.md``), and equals
    evidently's ``psi`` whenever evidently's data-dependent floor is 1e-4
    (no non-zero proportion below 1e-4). It differs from popmon (raw counts + 1e-5, grows
    with sample size) and frouros (zeros -> 2.2e-308, so one empty bin adds
    about 708·p). The binning is the caller's: evidently bins ref ∪ cur with
    Sturges, the industry convention uses reference deciles. Common reading:
    < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift.
    """
    return float(np.sum(psi_contributions(reference, current, include_missing=include_missing, eps=eps)))


@_doc
def kl_divergence(
    reference: Any,
    current: Any,
    *,
    include_missing: bool = False,
    eps: float = 1e-4,
    base: Optional[float] = None,
) -> float:
    r"""Kullback-Leibler divergence KL(reference ‖ current).

    .. math:: \mathrm{KL}(p\,\|\,q) = \sum_i \tilde p_i \ln(\tilde p_i / \tilde q_i) / \ln(\mathrm{base})

    Parameters
    ----------
    %(sides)s
    eps : float, default 1e-4
        Replacement for zero proportions on both sides, **without**
        renormalising. With ``eps=0``, bins where the reference is empty add
        0 and bins where only the current is empty make the result ``inf``.
    %(base)s

    Returns
    -------
    float

    Raises
    ------
    InvalidInputError, IncompatibleSketchError
        See :func:`align`; also a bad ``eps`` or ``base``.

    Notes
    -----
    The direction is reference ‖ current, as in evidently and
    ``scipy.stats.entropy(p, q)``; frouros computes KL(current ‖ reference).
    When no bin is empty the result equals ``scipy.stats.entropy(p, q)``.
    With empty bins it does not: scipy (and so evidently's ``kl_div``)
    renormalises the smoothed vectors, whereas this function keeps the
    industry convention shared with :func:`psi`. With :math:`S_p=\sum\tilde
    p_i` and :math:`S_q=\sum\tilde q_i` the two are related by
    ``kl = S_p * (entropy(p~, q~) - ln(S_q / S_p))``. Because the smoothed
    vectors may sum to slightly more than 1, the result can be marginally
    negative (by at most about ``eps`` times the number of bins) when a
    non-zero proportion is below ``eps``.
    """
    scale = _log_scale(base)
    p, q = _proportions(reference, current, include_missing, eps)
    return float(np.sum(_xlogy_ratio(p, q))) / scale


@_doc
def js_divergence(
    reference: Any,
    current: Any,
    *,
    include_missing: bool = False,
    eps: float = 0.0,
    base: Optional[float] = None,
) -> float:
    r"""Jensen-Shannon divergence (not its square root).

    .. math:: \mathrm{JSD} = \tfrac12\sum_i p_i\ln\frac{p_i}{m_i} + \tfrac12\sum_i q_i\ln\frac{q_i}{m_i},
              \qquad m = \tfrac12(p+q)

    divided by :math:`\ln(\mathrm{base})`. Symmetric, finite, in
    :math:`[0, \ln 2]` (natural log) or [0, 1] (base 2).

    Parameters
    ----------
    %(sides)s
    %(eps_unneeded)s
    %(base)s

    Returns
    -------
    float

    Notes
    -----
    This is the *divergence*, the square of :func:`js_distance`. popmon's
    ``jsd`` is a divergence too, but on raw counts with +1e-5, so it is not
    comparable.
    """
    scale = _log_scale(base)
    p, q = _proportions(reference, current, include_missing, eps)
    m = 0.5 * (p + q)
    js = 0.5 * (float(np.sum(_xlogy_ratio(p, m))) + float(np.sum(_xlogy_ratio(q, m))))
    # the exact value is >= 0; rounding can leave -1e-17, which sqrt rejects
    return max(js, 0.0) / scale


@_doc
def js_distance(
    reference: Any,
    current: Any,
    *,
    include_missing: bool = False,
    eps: float = 0.0,
    base: Optional[float] = None,
) -> float:
    r"""Jensen-Shannon distance, ``sqrt(js_divergence)``.

    Identical to ``scipy.spatial.distance.jensenshannon(p, q, base)``: with
    the default natural log it is evidently's and frouros' ``jensenshannon``
    (range [0, √ln2 ≈ 0.8326]); with ``base=2`` it is nannyml's
    ``jensen_shannon`` (range [0, 1]) on the same bins.

    Parameters
    ----------
    %(sides)s
    %(eps_unneeded)s
    %(base)s

    Returns
    -------
    float
    """
    return math.sqrt(
        js_divergence(reference, current, include_missing=include_missing, eps=eps, base=base)
    )


@_doc
def hellinger(
    reference: Any, current: Any, *, include_missing: bool = False, eps: float = 0.0
) -> float:
    r"""Hellinger distance.

    .. math:: H = \frac{1}{\sqrt2}\sqrt{\sum_i(\sqrt{p_i}-\sqrt{q_i})^2} \in [0, 1]

    Parameters
    ----------
    %(sides)s
    %(eps_unneeded)s

    Returns
    -------
    float

    Notes
    -----
    The formula of nannyml, whylogs and frouros. evidently computes the
    algebraically equal :math:`\sqrt{1-\sum\sqrt{p_i q_i}}`, which loses
    about 1e-8 of absolute precision near 0; on the same bins the two agree
    to that precision. Binning differs between those libraries.
    """
    p, q = _proportions(reference, current, include_missing, eps)
    h = math.sqrt(float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))) / math.sqrt(2.0)
    # disjoint supports give exactly 1 in exact arithmetic; keep rounding inside the range
    return min(h, 1.0)


@_doc
def total_variation(
    reference: Any, current: Any, *, include_missing: bool = False, eps: float = 0.0
) -> float:
    r"""Total variation distance, :math:`\tfrac12\sum_i|p_i-q_i| \in [0, 1]`.

    Parameters
    ----------
    %(sides)s
    %(eps_unneeded)s

    Returns
    -------
    float

    Notes
    -----
    This is the distance itself; evidently's ``TVD`` test reports a
    permutation p-value instead.
    """
    p, q = _proportions(reference, current, include_missing, eps)
    return min(0.5 * float(np.sum(np.abs(p - q))), 1.0)


@_doc
def l_infinity(
    reference: Any, current: Any, *, include_missing: bool = False, eps: float = 0.0
) -> float:
    r"""Largest change of any bin's proportion, :math:`\max_i|p_i-q_i|`.

    Parameters
    ----------
    %(sides)s
    %(eps_unneeded)s

    Returns
    -------
    float

    Notes
    -----
    nannyml's ``l_infinity`` and popmon's ``max_prob_diff`` on the same bins.
    """
    p, q = _proportions(reference, current, include_missing, eps)
    return float(np.max(np.abs(p - q)))


@dataclass(frozen=True)
class ChiSquareResult:
    """Outcome of :func:`chi_square`.

    Attributes
    ----------
    statistic : float
        Pearson's X² (``inf`` for a GOF test with a zero expected count).
    pvalue : float
        Upper tail probability of the chi-square distribution with ``dof``
        degrees of freedom.
    dof : int
        Degrees of freedom: number of bins with any count, minus one.
    """

    statistic: float
    pvalue: float
    dof: int


@_doc
def chi_square(
    reference: Any,
    current: Any,
    *,
    include_missing: bool = False,
    kind: str = "contingency",
    correction: bool = False,
) -> ChiSquareResult:
    r"""Pearson chi-square test that the two count vectors share one distribution.

    ``kind="contingency"`` (default) is the test of homogeneity on the 2×k
    table whose rows are the reference and current counts:

    .. math:: X^2 = \sum_{s\in\{r,c\}}\sum_i \frac{(O_{si}-E_{si})^2}{E_{si}},
              \qquad E_{si} = \frac{N_s\,(r_i+c_i)}{N_r+N_c}

    with k-1 degrees of freedom. It equals
    ``scipy.stats.chi2_contingency([r, c], correction=False)`` and, with
    ``correction=True``, scipy's default (Yates' continuity correction,
    applied only when there are exactly two non-empty bins). This is the
    test of nannyml, alibi-detect and frouros, except that they apply Yates
    for binary features by default and fastdrift only when asked.

    ``kind="gof"`` is the goodness-of-fit test of the current counts against
    the reference proportions, :math:`E_i = N_c\,r_i/N_r`, equal to
    ``scipy.stats.chisquare(c, f_exp=E)`` and to evidently's ``chisquare``
    test. A bin the reference never saw but the current did has
    :math:`E_i = 0` and gives ``statistic=inf``, ``pvalue=0``.

    Bins empty on both sides carry no information and are dropped before
    counting degrees of freedom (scipy's contingency test would reject them).
    Counts should be genuine frequencies: the test assumes them, and scaled
    or fractional counts give a meaningless p-value.

    Parameters
    ----------
    %(sides)s
    kind : {"contingency", "gof"}
    correction : bool, default False
        Yates' correction for the 2×2 case; contingency only.

    Returns
    -------
    ChiSquareResult
        ``statistic``, ``pvalue``, ``dof``. With a single non-empty bin the
        result is ``(0.0, 1.0, 0)``, like scipy.

    Raises
    ------
    InvalidInputError
        Bad counts, an empty side, an unknown ``kind``, or ``correction``
        with ``kind="gof"``.
    IncompatibleSketchError
        Sketches that cannot be aligned.

    Notes
    -----
    nannyml reports the statistic and alerts on p < 0.05; evidently reports
    the GOF p-value. The p-value is computed here (regularised upper
    incomplete gamma function), so scipy is not a runtime dependency; it
    agrees with ``scipy.stats.chi2.sf`` to about 1e-12 relative for
    moderate degrees of freedom.
    """
    if kind not in ("contingency", "gof"):
        raise InvalidInputError(f"kind must be 'contingency' or 'gof', got {kind!r}")
    if not isinstance(correction, (bool, np.bool_)):
        raise InvalidInputError(f"correction must be a bool, got {correction!r}")
    if correction and kind == "gof":
        raise InvalidInputError("correction (Yates) applies to kind='contingency' only")
    r, c, tot_r, tot_c, _ = _prepare(reference, current, include_missing)
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    dof = int(r.size) - 1
    if dof == 0:
        return ChiSquareResult(0.0, 1.0, 0)
    if kind == "gof":
        expected = r * (tot_c / tot_r)
        if np.any(expected == 0):
            # only possible where c > 0, since both-empty bins were dropped
            return ChiSquareResult(math.inf, 0.0, dof)
        stat = float(np.sum((c - expected) ** 2 / expected))
        return ChiSquareResult(stat, _chi2_sf(stat, dof), dof)
    observed = np.vstack([r, c])
    col = r + c
    expected = np.outer([tot_r, tot_c], col) / (tot_r + tot_c)
    if correction and dof == 1:
        diff = expected - observed
        observed = observed + np.sign(diff) * np.minimum(0.5, np.abs(diff))
    stat = float(np.sum((observed - expected) ** 2 / expected))
    return ChiSquareResult(stat, _chi2_sf(stat, dof), dof)


def psi_pvalue(value: float, n_ref: int, n_cur: int, bins: int) -> float:
    r"""Sample-size-aware p-value of a PSI computed on ``bins`` bins.

    Under no drift, :math:`\mathrm{PSI}\cdot\frac{nm}{n+m}` is approximately
    chi-square with ``bins - 1`` degrees of freedom (Yurdakul & Naranjo 2020,
    "Statistical properties of the population stability index"; PSI is the
    symmetrised KL divergence, whose scaled value is asymptotically the
    G-statistic). Large windows make every small PSI "significant"; this
    p-value says how surprising the PSI is for the sample sizes at hand.

    Parameters
    ----------
    value : float, the PSI (>= 0; NaN gives NaN)
    n_ref, n_cur : counts of the two samples (non-missing values)
    bins : bins holding any count on either side (empty-on-both bins carry no information)

    Returns
    -------
    float in [0, 1]; 1.0 when ``bins < 2`` or a side is empty.

    Examples
    --------
    >>> round(psi_pvalue(0.001, 10_000, 10_000, 10), 2)   # tiny shift, moderate samples
    0.83
    >>> psi_pvalue(0.001, 10_000_000, 10_000_000, 10) < 1e-6   # same shift, huge samples
    True
    """
    if math.isnan(value):
        return math.nan
    if bins < 2 or n_ref <= 0 or n_cur <= 0:
        return 1.0
    stat = value * (n_ref * n_cur / (n_ref + n_cur))
    return _chi2_sf(stat, int(bins) - 1)


# --------------------------------------------------------------------------
# chi-square tail probability without scipy
# --------------------------------------------------------------------------

_TINY = 1e-300


def _chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for X ~ chi-square(dof), i.e. Q(dof/2, x/2)."""
    if math.isnan(x):
        return math.nan
    if x == math.inf:
        return 0.0
    if x <= 0:
        return 1.0
    return _gammaincc(dof / 2.0, x / 2.0)


def _gammaincc(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) for a > 0, x > 0.

    Series for P when x < a + 1 (where Q is not small, so 1 - P keeps its
    precision), Lentz's continued fraction for Q otherwise; both converge in
    O(sqrt(a)) terms near the switch point. Numerical Recipes 3rd ed. §6.2.
    """
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    max_iter = 1000 + 50 * math.isqrt(int(a) + 1)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(max_iter):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, max_iter):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(log_prefactor) * h
