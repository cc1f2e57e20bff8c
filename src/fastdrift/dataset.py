"""Dataset access: files and directories opened as one Arrow dataset, read fragment by fragment.

Parquet, Arrow IPC / Feather, CSV and JSON lines; files, directories, hive partitions.  The
parallel unit is a *fragment*: a file, or one row group of a Parquet file.  Parquet string
columns with small dictionaries are read dictionary-encoded (categories counted on the
indices, same result).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.types as pat

from .errors import FastDriftError, InvalidInputError

__all__ = ["open_data", "DataSource", "DataReadError", "FORMATS", "batches", "fragment_path", "scan_pool"]

#: File extension -> pyarrow.dataset format name.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".arrow": "ipc", ".feather": "ipc", ".ipc": "ipc",
           ".csv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json"}
_BATCH_ROWS = 131_072  # per-batch Python work (views, calls) amortised; a row group bounds it anyway


class DataReadError(FastDriftError, OSError):
    """A data file cannot be read or decoded (named in the message)."""


def _format_of(path: str) -> str:
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise InvalidInputError(f"{path}: unknown file format (known extensions: {', '.join(sorted(FORMATS))})")
    return fmt


def _dir_format(path: str) -> str:
    found = set()
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        for f in files:
            if f.startswith((".", "_")):
                continue
            found.add(_format_of(os.path.join(root, f)))
    if not found:
        raise InvalidInputError(f"{path}: directory holds no data files")
    if len(found) > 1:
        raise InvalidInputError(f"{path}: mixes file formats {sorted(found)}")
    return found.pop()


@dataclass
class DataSource:
    """A dataset to scan and what is known about its size (for the progress bar)."""

    paths: Tuple[str, ...]
    dataset: ds.Dataset
    fragments: list  # ds.Fragment, or (Parquet file fragment, row-group index)
    file_bytes: int
    rows: Optional[int]  # None when counting would need a scan (CSV, JSON)
    logical_schema: Optional[pa.Schema] = None  # the data's types when ``dataset`` reads some differently

    @property
    def schema(self) -> pa.Schema:
        """The data's Arrow types (what profiles and schema changes report)."""
        return self.logical_schema if self.logical_schema is not None else self.dataset.schema

    @property
    def read_schema(self) -> pa.Schema:
        """The types batches are read as (Parquet string columns: dictionary-encoded)."""
        return self.dataset.schema

    @property
    def label(self) -> str:
        return ", ".join(self.paths)


def open_data(paths: Sequence[str]) -> DataSource:
    """Open files / directories (hive partitions discovered) as one dataset.

    Raises
    ------
    InvalidInputError
        A path does not exist, has an unknown extension, or the paths mix formats.
    DataReadError
        pyarrow cannot read a file's schema (names the file).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise InvalidInputError("no data paths given")
    parts, fmts = [], set()
    for p in paths:
        if not os.path.exists(p):
            raise InvalidInputError(f"{p}: no such file or directory")
        fmt = _dir_format(p) if os.path.isdir(p) else _format_of(p)
        fmts.add(fmt)
        try:
            parts.append(ds.dataset(p, format=fmt, partitioning="hive" if os.path.isdir(p) else None))
        except (pa.ArrowException, OSError) as exc:
            raise DataReadError(f"{p}: cannot read as {fmt}: {_one_line(exc)}") from None
    if len(fmts) > 1:
        raise InvalidInputError(f"data paths mix file formats {sorted(fmts)}")
    try:
        dset = parts[0] if len(parts) == 1 else ds.dataset(parts)
    except (pa.ArrowException, OSError) as exc:
        raise DataReadError(f"{', '.join(paths)}: schemas do not unify: {_one_line(exc)}") from None
    fmt = fmts.pop()
    logical = None
    if fmt == "parquet":
        logical = dset.schema
        dset = _dictionary_strings(paths, dset)
    frags, size, rows = [], 0, 0
    try:
        for f in dset.get_fragments():
            size += os.path.getsize(f.path) if os.path.exists(f.path) else 0
            if fmt == "parquet":
                # Row groups are the parallel unit: one big file still keeps every core busy.  They
                # are made into fragments only when read: each row-group fragment carries the file's
                # metadata, so splitting up front would hold O(row groups²) metadata.
                md = f.metadata
                frags.extend((f, i) for i in range(md.num_row_groups))
                rows += md.num_rows
            else:
                frags.append(f)
                if fmt == "ipc":
                    rows += f.count_rows()  # footers only
    except (pa.ArrowException, OSError) as exc:
        raise DataReadError(f"{', '.join(paths)}: {_one_line(exc)}") from None
    return DataSource(tuple(paths), dset, frags, size, rows if fmt in ("parquet", "ipc") else None, logical)


#: A string column is read dictionary-encoded when its first column chunk's dictionary page holds
#: at most this many (compressed) bytes per row of a batch: small dictionaries count faster as
#: dictionaries, large ones slower (each batch maps its whole dictionary), unique ids slower still.
_DICT_BYTES_PER_ROW = 1 / 8


def _small_dictionaries(dset: ds.Dataset, names: List[str]) -> List[str]:
    """The columns of ``names`` whose first Parquet column chunk has a small dictionary page."""
    if not names:
        return []
    try:
        frag = next(iter(dset.get_fragments()))
        md = frag.metadata
        if md.num_row_groups == 0:
            return []
        rg = md.row_group(0)
        out = []
        for i in range(rg.num_columns):
            c = rg.column(i)
            limit = min(rg.num_rows, _BATCH_ROWS) * _DICT_BYTES_PER_ROW
            if c.path_in_schema in names and c.has_dictionary_page and c.dictionary_page_offset is not None \
                    and 0 < c.data_page_offset - c.dictionary_page_offset <= limit:
                out.append(c.path_in_schema)
        return out
    except (pa.ArrowException, OSError, StopIteration):
        return []


def _dictionary_strings(paths: Sequence[str], dset: ds.Dataset) -> ds.Dataset:
    """The Parquet dataset with its small-dictionary string columns read dictionary-encoded.

    Writers dictionary-encode low-cardinality strings; read as dictionaries they are never
    decoded into string arrays, and a Categorical counts their indices instead of
    hashing every string (bench/bench_categorical.py times both), with the same categories in the same (arrival) order.
    Only columns whose first chunk has a small dictionary page (:data:`_DICT_BYTES_PER_ROW`); a
    later chunk that fell back to plain encoding is dictionary-encoded by the reader.
    """
    strs = [f.name for f in dset.schema if pat.is_string(f.type) or pat.is_large_string(f.type)]
    strs = _small_dictionaries(dset, strs)
    if not strs:
        return dset
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=strs))
    # Not memory-mapped, though mapping saves some of the read's CPU: a file truncated while it is mapped
    # kills the process with SIGBUS, where read() gives the one-line error of a damaged file.
    try:
        parts = [ds.dataset(p, format=fmt, partitioning="hive" if os.path.isdir(p) else None)
                 for p in paths]
        out = parts[0] if len(parts) == 1 else ds.dataset(parts)
    except (pa.ArrowException, OSError):
        return dset  # read as strings
    if out.schema.names != dset.schema.names:
        return dset
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def fragment_path(frag) -> str:
    """The file a fragment, or a ``(Parquet file fragment, row group)`` pair, reads."""
    return (frag[0] if isinstance(frag, tuple) else frag).path


_POOL_LOCK = threading.Lock()
_pool_state: list = []  # [pool or None], once decided


def scan_pool() -> Optional[pa.MemoryPool]:
    """The memory pool of the scans' reads: pyarrow's jemalloc pool, its freed pages kept for reuse.

    A scan frees and allocates buffers of the same sizes for every row group.  pyarrow's
    default pool (mimalloc) hands freed pages back to the system and faults them in again,
    a sixth of a profile's CPU time (bench/bench_scan.py, ``--breakdown``).  pyarrow's jemalloc
    is its own copy, used only by whoever asks for its pool; its arenas made after the first
    call keep freed pages (``pyarrow.jemalloc_set_decay_ms(-1)``) and the file scan gives them
    back after each scan (``release_unused``).

    Returns None (pyarrow's default pool) when pyarrow is built without jemalloc, or when
    jemalloc is already the default pool (the application chose it: its settings stay).
    """
    with _POOL_LOCK:
        if not _pool_state:
            pool = None
            try:
                if pa.default_memory_pool().backend_name != "jemalloc":
                    pool = pa.jemalloc_memory_pool()
                    pa.jemalloc_set_decay_ms(-1)
            except (NotImplementedError, pa.ArrowException):
                pool = None
            _pool_state.append(pool)
        return _pool_state[0]


def batches(frag, columns: List[str], schema: pa.Schema, label: str, use_threads: bool = False,
            pool: Optional[pa.MemoryPool] = None):
    """Batches of a fragment, or of one row group given as ``(parquet file fragment, index)``,
    decoded into ``pool`` (default: pyarrow's default pool)."""
    try:
        if isinstance(frag, tuple):
            frag = frag[0].subset(row_group_ids=[frag[1]])
        # use_threads=False: the pool already runs one fragment per core; pyarrow's own
        # readahead would multiply the batches held in memory by its thread count.
        yield from frag.to_batches(columns=columns, schema=schema, batch_size=_BATCH_ROWS,
                                   use_threads=use_threads, memory_pool=pool)
    except (pa.ArrowException, OSError) as exc:
        raise DataReadError(f"{fragment_path(frag)}: "
                            f"{_one_line(exc)}") from None
