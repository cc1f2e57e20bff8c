"""Column adapters: the only place that knows how Arrow lays out its buffers."""

from .arrow import ColumnView, as_arrow, as_table, iter_batches, iter_columns

__all__ = ["ColumnView", "iter_columns", "iter_batches", "as_table", "as_arrow"]
