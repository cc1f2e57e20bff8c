"""Columns for the segmented-kernel tests: Arrow arrays with nulls, NaN, +-inf, sliced (offsets) and
chunked, and the rows of one segment filtered by pyarrow (the oracle's input)."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def column(seed, dtype, n, null_frac, chunks, offset, skewed=False):
    """A column of n rows (after slicing ``offset`` off the front) with nulls, NaN, +-inf; floats
    normal, or with ``skewed`` lognormal of both signs with ties (a t-digest's hard case)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    m = n + offset
    if dt.kind == "f":
        if skewed:
            x = rng.lognormal(0, 2, m).astype(dt) * np.where(rng.random(m) < 0.3, -1, 1).astype(dt)
        else:
            x = rng.normal(0, 60, m).astype(dt)
        r = rng.random(m)
        x[r < 0.05] = np.nan
        x[(r >= 0.05) & (r < 0.08)] = np.inf
        x[(r >= 0.08) & (r < 0.1)] = -np.inf
        if skewed:
            x[(r >= 0.1) & (r < 0.2)] = 3  # ties
    else:
        info = np.iinfo(dt)
        x = rng.integers(max(info.min, -200), min(info.max, 200), m, dtype=dt, endpoint=True)
    mask = rng.random(m) < null_frac
    arr = pa.array(x, mask=mask if null_frac else None).slice(offset)
    if chunks > 1 and n:
        cuts = np.linspace(0, n, chunks + 1).astype(int)
        return pa.chunked_array([arr.slice(a, b - a) for a, b in zip(cuts[:-1], cuts[1:])], type=arr.type)
    return arr


def filtered(arr, codes, s):
    """The rows of ``arr`` whose segment code is ``s``, in order."""
    a = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return pc.filter(a, pa.array(codes == s))
