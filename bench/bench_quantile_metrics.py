"""Accuracy of the digest-based KS and Wasserstein-1 against scipy on the raw samples.

``python bench/bench_quantile_metrics.py [seeds]`` prints, per data set, sample size and
compression, over ``seeds`` seeds (default 5) and two alternatives (the same distribution, and
a 5% shift or scale change; the second sample 0.7 times the size of the first):

* W1: the relative error ``wasserstein / scipy.stats.wasserstein_distance - 1`` of the shifted
  pair (min, max), and the error of both pairs in units of the first sample's mean absolute
  deviation from its median (max |.|: the null pair's W1 is itself small, so its relative
  error says little);
* KS: the error ``D - scipy.stats.ks_2samp(...).statistic`` (mean, max |.|, share below),
  and the ratio of the p-values (both with their default ``method="auto"``: exact up to 10,000
  values; median and range over p > 1e-3).

docs/conventions.md quotes these tables.  Not a pytest benchmark: it measures accuracy, and
scipy (a test-only dependency) is the oracle.
"""
import sys

import numpy as np
import scipy.stats as ss

import fastdrift

DATA = {
    "normal": lambda rng, n, s: rng.normal(s, 1.0, n),
    "lognormal(1)": lambda rng, n, s: rng.lognormal(s, 1.0, n),
    "lognormal(2)": lambda rng, n, s: rng.lognormal(s, 2.0, n),
    "pareto(1.5)": lambda rng, n, s: (rng.pareto(1.5, n) + 1.0) * (1.0 + s),
    "student-t(3)": lambda rng, n, s: rng.standard_t(3, n) + s,
    "student-t(1.5)": lambda rng, n, s: rng.standard_t(1.5, n) + s,
}
SIZES = (10_000, 100_000, 1_000_000)
COMPRESSIONS = (100, 300)
SHIFT = 0.05


def main(seeds: int = 5) -> None:
    print(f"{'data':15s} {'n':>9s} {'delta':>5s} | {'W1 rel err min':>14s} {'max':>8s} {'|err|/MAD':>9s} | "
          f"{'KS D err mean':>13s} {'max|.|':>8s} {'low':>6s} | p ratio med [min, max]")
    for name, gen in DATA.items():
        for n in SIZES:
            for comp in COMPRESSIONS:
                w_err, w_mad, d_err, p_ratio = [], [], [], []
                for seed in range(seeds if n < 1_000_000 else max(2, seeds // 2)):
                    rng = np.random.default_rng(seed)
                    for shift in (0.0, SHIFT):
                        a, b = gen(rng, n, 0.0), gen(rng, int(0.7 * n), shift)
                        ta = fastdrift.TDigest(comp).update(a)
                        tb = fastdrift.TDigest(comp).update(b)
                        w, exact = fastdrift.wasserstein(ta, tb), ss.wasserstein_distance(a, b)
                        if shift:
                            w_err.append(w / exact - 1.0)
                        w_mad.append(abs(w - exact) / np.mean(np.abs(a - np.median(a))))
                        ks, ref = fastdrift.ks_2samp(ta, tb), ss.ks_2samp(a, b)
                        d_err.append(ks.statistic - ref.statistic)
                        if ref.pvalue > 1e-3:
                            p_ratio.append(ks.pvalue / ref.pvalue)
                w, d, p = np.array(w_err), np.array(d_err), np.array(p_ratio)
                ps = f"{np.median(p):.2f} [{p.min():.2f}, {p.max():.2f}]" if p.size else "-"
                print(f"{name:15s} {n:9d} {comp:5d} | {w.min():+14.4f} {w.max():+8.4f} {max(w_mad):9.1e} | "
                      f"{d.mean():+13.2e} {np.abs(d).max():8.2e} {(d < 0).sum():3d}/{d.size:<2d} | {ps}",
                      flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
