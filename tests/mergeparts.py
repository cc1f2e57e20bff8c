"""Helpers of the merge tests: random numeric parts with the awkward cases (NaN, inf, empty,
overflowing squares) and Chan et al.'s pairwise moments merge written out plainly as the oracle."""
import numpy as np


def numeric_part(rng, n, spread=3.0, overflow=False):
    """``n`` normal values centred within ``±spread``; some parts with NaN, some with inf, some
    empty, and (``overflow``) some whose squares overflow (an m2 of +inf is a state too)."""
    x = rng.normal(rng.uniform(-spread, spread), rng.uniform(0.1, spread / 2 + 3.5), n)
    kind = rng.integers(0, 5 if overflow else 4)
    if kind == 1:
        x[rng.random(n) < 0.2] = np.nan
    elif kind == 2:
        x[rng.random(n) < 0.1] = np.inf
    elif kind == 3:
        x = x[:0]
    elif kind == 4:
        x = x * 1e150
    return x


def chan_merge(ints, flts, o_i, o_f):
    """Merge moments state ``(o_i, o_f)`` into ``(ints, flts)`` in place: Chan et al.'s pairwise
    update, in plain Python floats."""
    na, nb = int(ints[0]), int(o_i[0])
    ints[1:] += o_i[1:]
    if nb == 0:
        return
    mn, mx = min(float(flts[0]), float(o_f[0])), max(float(flts[1]), float(o_f[1]))
    if na == 0:
        flts[2:] = o_f[2:]
    else:
        n = float(na + nb)
        delta = float(o_f[3]) - float(flts[3])
        flts[3] = float(flts[3]) + delta * (nb / n)
        flts[4] = float(flts[4]) + float(o_f[4]) + delta * delta * (float(na) * float(nb) / n)
        flts[2] = float(flts[2]) + float(o_f[2])
    flts[0], flts[1] = mn, mx
    ints[0] = na + nb
