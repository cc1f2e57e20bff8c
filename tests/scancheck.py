"""The scan tests' independent check of a profile made by a scan of ``table``: rows, each numeric
column's t-digest counts and extremes against numpy, and the categories against the in-memory
profile of the same table."""
import numpy as np

import fastdrift


def check_scan_counts(prof, table, numeric=("x", "y", "i"), categorical="s"):
    assert prof.rows == table.num_rows
    for name in numeric:
        col = table.column(name)
        v = col.drop_null().to_numpy().astype(np.float64)
        finite = v[np.isfinite(v)]
        td = prof[name].tdigest
        assert td.finite_count == finite.size and td.count == len(col) and td.null_count == col.null_count, name
        assert td.nan_count == int(np.isnan(v).sum()), name
        assert (td.min, td.max) == (finite.min(), finite.max()), name
    assert prof[categorical].categorical == fastdrift.profile(table)[categorical].categorical
