"""Drift metrics: pure functions of a reference and a current distribution."""

from .divergence import (
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
    psi_pvalue,
    total_variation,
)
from .quantile import KSResult, ks_2samp, ks_pvalue, quantile_shift, wasserstein
from .drift import ColumnDrift, bin_label, column_drift, compare_profiles, format_table, psi_status

__all__ = [
    "align",
    "psi",
    "psi_contributions",
    "psi_pvalue",
    "kl_divergence",
    "js_divergence",
    "js_distance",
    "hellinger",
    "total_variation",
    "l_infinity",
    "chi_square",
    "ChiSquareResult",
    "OTHER",
    "MISSING",
    "KSResult",
    "ks_2samp",
    "ks_pvalue",
    "wasserstein",
    "quantile_shift",
    "ColumnDrift",
    "column_drift",
    "bin_label",
    "compare_profiles",
    "format_table",
    "psi_status",
]
