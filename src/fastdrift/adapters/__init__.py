"""Column adapters: the only place that knows how Arrow lays out its buffers."""

from .arrow import ColumnView, iter_columns, as_arrow

__all__ = ["ColumnView", "iter_columns", "as_arrow"]
