"""Exposure tables bucketed by customer: written and read in bounded memory.

``manylift partition EXPOSURES --buckets B --out DIR`` (:func:`partition_exposures`)
writes a Parquet dataset in which every row of a customer sits in one of ``B``
buckets, chosen by a hash of the customer id.  A process of a multi-process fit
then reads only its buckets (:func:`process_buckets`, :func:`read_partitioned`),
row group by row group, so it never holds more than its share of the rows plus
one row group.

The layout (a warehouse export can write the same)::

    DIR/
      _manylift_partition.json          the manifest (below); written last
      bucket=0/part-0.parquet           every row whose customer falls in bucket 0
      bucket=0/part-1.parquet           (any number of files per bucket)
      ...
      bucket=B-1/part-0.parquet

* Hive-style folders ``bucket=<k>``, ``k`` in ``0 .. B-1`` (no zero padding); empty
  buckets may have no folder.  The files hold the table's own columns (the bucket is
  only in the folder name) and may have any number of row groups; about 64k-1M rows
  per row group reads well.
* **The one rule a reader relies on: all rows of a customer are in one bucket.**
  A process reads whole buckets, so it holds whole customers.  Which hash puts
  them there does not matter to the reader (it never recomputes it); a warehouse
  can use its own, e.g. BigQuery
  ``MOD(ABS(FARM_FINGERPRINT(CAST(customer_id AS STRING))), B)``, or Spark
  ``pmod(xxhash64(customer_id), B)``, and write one folder per value.
* The manifest ``_manylift_partition.json``::

      {"format": "manylift-partition", "version": 1, "buckets": B,
       "customer_col": "customer_id", "hash": "fnv1a64-splitmix64",
       "rows": N, "rows_per_bucket": [...], "columns": {"name": "arrow type", ...}}

  ``hash`` is free text for a warehouse export (say which one you used);
  ``rows_per_bucket`` is optional (a reader counts rows from the Parquet footers
  where it is missing).

manylift's own hash (``"fnv1a64-splitmix64"``), so that the same id lands in the same
bucket on every machine and in every run: the id's text (an integer id as its
decimal digits, so ``123`` and ``"123"`` agree; a string id as its UTF-8 bytes) is
hashed with 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3),
then mixed with the splitmix64 finaliser (``z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31``, arithmetic mod 2^64), and the
bucket is that value mod B.  FNV-1a is written out here (:func:`customer_hash`)
because pyarrow exposes no stable row hash and a ten-line function beats a new
dependency; the finaliser spreads FNV's weak low bits, so buckets are balanced for
sequential ids too.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manylift._core.atomic import write_json
from manylift._core.errors import DataError, ReadError

__all__ = ["MANIFEST", "PartitionInfo", "customer_hash", "bucket_of", "partition_exposures",
           "read_partition_info", "process_buckets", "iter_row_groups", "read_partitioned",
           "is_partitioned"]

#: File name endings read as CSV and as Parquet (``manylift.data.io`` uses the same).
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv", ".csv.bz2", ".csv.zip", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")

#: File name of the manifest at the top of a partitioned dataset.
MANIFEST = "_manylift_partition.json"
FORMAT = "manylift-partition"
HASH_NAME = "fnv1a64-splitmix64"

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


# ---------------------------------------------------------------------------
# the hash
# ---------------------------------------------------------------------------
def _id_text(values):
    """Customer ids as an Arrow large_string array: integers as decimal digits."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        raise DataError(f"The customer id column has {arr.null_count:,} missing values; every "
                        f"row needs a customer id. Fill or drop those rows first.")
    t = arr.type
    if pa.types.is_floating(t):
        v = arr.to_numpy(zero_copy_only=False)
        if not np.all(np.isfinite(v) & (v == np.round(v))):
            raise DataError("Customer ids must be integers or strings; found non-integer "
                            "numbers. Store the ids as integers or as text.")
        arr = pa.array(v.astype(np.int64))
        t = arr.type
    if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t) \
            or pa.types.is_dictionary(t):
        return pc.cast(pc.cast(arr, pa.string()) if pa.types.is_dictionary(t) else arr,
                       pa.large_string())
    raise DataError(f"Customer ids must be integers or strings; the column has type {t}. "
                    f"Convert it to one of those.")


def _splitmix64(z: np.ndarray) -> np.ndarray:
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def customer_hash(values) -> np.ndarray:
    """The 64-bit hash of each customer id (see the module docstring): FNV-1a of the id's
    text, then the splitmix64 finaliser.  ``values``: an Arrow array or anything
    ``pyarrow.array`` takes (integers or strings)."""
    text = _id_text(values)
    n = len(text)
    bufs = text.buffers()
    offsets = np.frombuffer(bufs[1], np.int64)[text.offset: text.offset + n + 1]
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    h = np.full(n, _FNV_OFFSET, np.uint64)
    # one vector pass per byte position (ids are short: a UUID is 36 bytes)
    with np.errstate(over="ignore"):
        for j in range(int(lengths.max()) if n else 0):
            idx = np.flatnonzero(lengths > j)
            h[idx] = (h[idx] ^ data[offsets[idx] + j].astype(np.uint64)) * _FNV_PRIME
        return _splitmix64(h)


def bucket_of(values, n_buckets: int) -> np.ndarray:
    """The bucket (0 .. n_buckets - 1) of each customer id, as int32."""
    return (customer_hash(values) % np.uint64(n_buckets)).astype(np.int32)


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PartitionInfo:
    """What a partitioned dataset's manifest says (:func:`read_partition_info`)."""

    path: Path
    n_buckets: int
    customer_col: str
    rows: int | None
    rows_per_bucket: tuple[int, ...] | None
    columns: dict
    hash: str

    def bucket_files(self, bucket: int) -> list[Path]:
        d = self.path / f"bucket={int(bucket)}"
        return sorted(d.glob("*.parquet"), key=_natural) if d.is_dir() else []


def _natural(p: Path):
    """part-10 after part-9."""
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _source_batches(path: Path, batch_rows: int, customer_col: str):
    """(schema, iterator of record batches) of a CSV or Parquet source, streamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _CSV, _PARQUET = CSV_SUFFIXES, PARQUET_SUFFIXES
    name = path.name.lower()
    if path.is_dir() or name.endswith(_PARQUET):
        files = sorted(path.rglob("*.parquet"), key=_natural) if path.is_dir() else [path]
        if not files:
            raise ReadError(f"The folder {str(path)!r} holds no .parquet files.")
        try:
            schema = pq.read_schema(files[0])
        except (pa.ArrowInvalid, OSError) as exc:
            raise ReadError(f"Could not read {str(files[0])!r} as Parquet: {exc}.") from None

        def batches():
            for f in files:
                # row group by row group, without pre-buffering: iter_batches over a whole
                # file pre-buffers far ahead (measured: 4x a 3 MB row group's memory)
                pf = pq.ParquetFile(f, pre_buffer=False)
                if not pf.schema_arrow.equals(schema):
                    raise ReadError(f"{str(f)!r} has other columns or types than "
                                    f"{str(files[0])!r}; all files of a folder must match.")
                for i in range(pf.num_row_groups):
                    yield from pf.iter_batches(batch_size=batch_rows, row_groups=[i],
                                               use_threads=False)

        return schema, batches()
    if name.endswith(_CSV):
        import pyarrow.csv as pcsv

        delimiter = "\t" if name.endswith(".tsv") else ","
        try:
            reader = pcsv.open_csv(
                pa.input_stream(str(path), compression="detect"),
                read_options=pcsv.ReadOptions(block_size=max(1 << 16, 64 * batch_rows)),
                parse_options=pcsv.ParseOptions(delimiter=delimiter),
                convert_options=pcsv.ConvertOptions(
                    column_types={customer_col: pa.string()}))
        except (pa.ArrowInvalid, OSError) as exc:
            raise ReadError(f"Could not read {str(path)!r} as CSV: {exc}.") from None
        return reader.schema, iter(reader)
    raise ReadError(f"Cannot tell the format of {str(path)!r} from its name; use a .csv, "
                    f".csv.gz or .parquet file (or a folder of Parquet files).")


class _BucketWriters:
    """One Parquet writer per bucket, each bucket's rows buffered until a row group is full.

    Written here rather than with ``pyarrow.dataset.write_dataset``: that one queues up to
    64 M rows when reading outpaces writing (not settable from Python), so its memory
    is not bounded by the row groups.  Here every write is synchronous and at most
    ``max_open`` files are open at once (a bucket whose file was closed continues in
    ``part-<k+1>.parquet``).
    """

    def __init__(self, root: Path, schema, group_rows: int, max_open: int = 128):
        self.root, self.schema, self.group_rows, self.max_open = root, schema, group_rows, max_open
        self.pending: dict[int, list] = {}
        self.pending_rows: dict[int, int] = {}
        self.open: dict[int, object] = {}  # bucket -> ParquetWriter, in least-recent order
        self.parts: dict[int, int] = {}

    def add(self, bucket: int, table) -> None:
        self.pending.setdefault(bucket, []).append(table)
        self.pending_rows[bucket] = self.pending_rows.get(bucket, 0) + table.num_rows
        if self.pending_rows[bucket] >= self.group_rows:
            self._flush(bucket)

    def _flush(self, bucket: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = self.pending.pop(bucket, [])
        self.pending_rows.pop(bucket, None)
        if not tables:
            return
        w = self.open.pop(bucket, None)
        if w is None:
            if len(self.open) >= self.max_open:
                self.open.pop(next(iter(self.open))).close()
            k = self.parts.get(bucket, -1) + 1
            self.parts[bucket] = k
            d = self.root / f"bucket={bucket}"
            d.mkdir(parents=True, exist_ok=True)
            w = pq.ParquetWriter(d / f"part-{k}.parquet", self.schema)
        self.open[bucket] = w  # most recent last
        w.write_table(pa.concat_tables(tables), row_group_size=self.group_rows)

    def close(self) -> None:
        for b in list(self.pending):
            self._flush(b)
        for w in self.open.values():
            w.close()
        self.open.clear()


def partition_exposures(source: str | os.PathLike, out: str | os.PathLike, n_buckets: int, *,
                        customer_col: str = "customer_id", batch_rows: int = 1 << 16,
                        row_group_rows: int = 1 << 18,
                        buffer_rows: int = 1 << 22) -> PartitionInfo:
    """Write ``source`` (CSV, gzipped CSV, Parquet file or folder) as a dataset bucketed by
    customer under ``out`` (layout in the module docstring), in bounded memory.

    The source is streamed ``batch_rows`` rows at a time; each bucket's rows are
    buffered until a row group is ready (``row_group_rows``, or fewer so that all
    buckets together buffer at most ``buffer_rows`` rows) and then written, so memory
    stays near ``buffer_rows`` rows plus a batch whatever the size of the source.  The
    output is built in a temporary folder next to ``out`` and renamed into place at the
    end (a crash leaves no half-written dataset); ``out`` must not exist or be empty.
    The source is only read.  A CSV's customer ids are stored as text (their type
    cannot change part-way through the file then).
    """
    import pyarrow as pa

    from manylift._core.checks import check_positive_int

    check_positive_int("buckets", n_buckets, "manylift partition")
    check_positive_int("batch_rows", batch_rows, "partition_exposures")
    check_positive_int("row_group_rows", row_group_rows, "partition_exposures")
    check_positive_int("buffer_rows", buffer_rows, "partition_exposures")
    group_rows = max(1, min(row_group_rows, buffer_rows // n_buckets))
    src, out = Path(source), Path(out)
    if not src.exists():
        raise ReadError(f"Input {str(src)!r} does not exist. Check the path.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"The output folder {str(out)!r} exists and is not empty; choose a new "
                        f"folder (a partitioned dataset is written whole, never merged).")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise DataError("The output folder must not be the input or inside it.")
    schema, batches = _source_batches(src, batch_rows, customer_col)
    if customer_col not in schema.names:
        raise DataError(f"The input has no column {customer_col!r} (customer id); its columns "
                        f"are {schema.names}. Pass --customer-col.")
    counts = np.zeros(n_buckets, np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        writers = _BucketWriters(tmp, schema, group_rows)
        for batch in batches:
            b = bucket_of(batch.column(customer_col), n_buckets)
            counts += np.bincount(b, minlength=n_buckets)
            order = np.argsort(b, kind="stable")
            starts = np.searchsorted(b[order], np.arange(n_buckets + 1))
            table = pa.Table.from_batches([batch])
            for k in np.flatnonzero(np.diff(starts)):
                # take() copies: a pending bucket holds its own rows, not the whole batch
                writers.add(int(k), table.take(pa.array(order[starts[k]:starts[k + 1]])))
            del table, batch
        writers.close()
        write_json(tmp / MANIFEST, {
            "format": FORMAT, "version": 1, "buckets": int(n_buckets),
            "customer_col": customer_col, "hash": HASH_NAME, "rows": int(counts.sum()),
            "rows_per_bucket": counts.tolist(), "columns": {f.name: str(f.type) for f in schema}})
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except pa.ArrowInvalid as exc:
        raise ReadError(f"Could not read {str(src)!r} to the end: {exc}. If a CSV column's "
                        f"type changes part-way (e.g. integers, then text), convert the file "
                        f"to Parquet first or fix the column.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return read_partition_info(out)


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------
def is_partitioned(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder with a manylift partition manifest."""
    p = Path(path)
    return p.is_dir() and (p / MANIFEST).is_file()


def read_partition_info(path: str | os.PathLike) -> PartitionInfo:
    """The manifest of a partitioned dataset, checked."""
    p = Path(path)
    m = p / MANIFEST
    if not m.is_file():
        raise ReadError(f"{str(p)!r} is not a partitioned dataset: it has no {MANIFEST}. Write "
                        f"one with `manylift partition` (or see docs/scaling.md for the layout "
                        f"a warehouse export must have).")
    try:
        meta = json.loads(m.read_text())
        if meta.get("format") != FORMAT or int(meta.get("version", 0)) != 1:
            raise ValueError(f"format {meta.get('format')!r} version {meta.get('version')!r}")
        B = int(meta["buckets"])
        rpb = meta.get("rows_per_bucket")
        info = PartitionInfo(p, B, str(meta.get("customer_col", "customer_id")),
                             int(meta["rows"]) if meta.get("rows") is not None else None,
                             tuple(int(r) for r in rpb) if rpb is not None else None,
                             dict(meta.get("columns", {})), str(meta.get("hash", "")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ReadError(f"The manifest {str(m)!r} is not a manylift partition manifest "
                        f"({exc}); see docs/scaling.md for its fields.") from None
    if B < 1 or (info.rows_per_bucket is not None and len(info.rows_per_bucket) != B):
        raise ReadError(f"The manifest {str(m)!r} is inconsistent: {B} buckets but "
                        f"rows_per_bucket of length {len(info.rows_per_bucket or ())}.")
    extra = sorted(d.name for d in p.iterdir() if d.is_dir() and d.name.startswith("bucket=")
                   and not (d.name[7:].isdigit() and int(d.name[7:]) < B))
    if extra:
        raise ReadError(f"{str(p)!r} has folders outside buckets 0..{B - 1}: {extra[:5]}. The "
                        f"manifest and the folders disagree; rewrite the dataset.")
    return info


def process_buckets(n_buckets: int, n_processes: int, process_id: int) -> list[int]:
    """The buckets process ``process_id`` of ``n_processes`` reads: ``b % n_processes ==
    process_id`` (whole buckets, so whole customers; balanced when n_buckets is a multiple
    of n_processes, as the hash spreads rows evenly over buckets)."""
    if not 1 <= n_processes <= n_buckets:
        raise DataError(f"{n_processes} processes need at least as many buckets; the dataset "
                        f"has {n_buckets}. Partition it again with --buckets of at least "
                        f"{n_processes} (a multiple of it balances best).")
    if not 0 <= process_id < n_processes:
        raise DataError(f"The process id must be between 0 and {n_processes - 1}; got "
                        f"{process_id}.")
    return list(range(process_id, n_buckets, n_processes))


def iter_row_groups(path: str | os.PathLike, buckets: Sequence[int] | None = None,
                    columns: Sequence[str] | None = None):
    """Yield ``(bucket, pyarrow.Table)`` one row group at a time from the given buckets
    (all if None), in bucket, file and row-group order."""
    import pyarrow.parquet as pq

    info = read_partition_info(path)
    for b in (range(info.n_buckets) if buckets is None else buckets):
        if not 0 <= int(b) < info.n_buckets:
            raise DataError(f"Bucket {b} is outside 0..{info.n_buckets - 1}.")
        for f in info.bucket_files(int(b)):
            pf = pq.ParquetFile(f, pre_buffer=False)
            for i in range(pf.num_row_groups):
                yield int(b), pf.read_row_group(i, columns=list(columns) if columns else None)


def _count_rows(info: PartitionInfo, buckets: Sequence[int]) -> int:
    import pyarrow.parquet as pq

    return int(sum(pq.ParquetFile(f).metadata.num_rows for b in buckets
                   for f in info.bucket_files(int(b))))


def read_partitioned(path: str | os.PathLike, buckets: Sequence[int] | None = None,
                     columns: Sequence[str] | None = None):
    """The rows of the given buckets (all if None) as a pandas DataFrame, read row group by
    row group into preallocated columns: peak memory is the result plus one row group.

    Rows come in bucket, file and row-group order (so each customer's rows are together
    in one bucket; the fit sorts by customer anyway).
    """
    import pandas as pd
    import pyarrow as pa

    info = read_partition_info(path)
    buckets = list(range(info.n_buckets)) if buckets is None else [int(b) for b in buckets]
    n = _count_rows(info, buckets)
    cols: dict | None = None
    pos = 0
    for _, table in iter_row_groups(path, buckets, columns):
        if cols is None:
            cols = {}
            for f in table.schema:
                if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) \
                        or pa.types.is_boolean(f.type):
                    dt = f.type.to_pandas_dtype()
                    if table.column(f.name).null_count:
                        dt = np.float64
                    cols[f.name] = np.empty(n, dt)
                elif pa.types.is_timestamp(f.type):
                    cols[f.name] = np.empty(n, "datetime64[ns]")
                else:  # strings, dates, ...: object columns, as pandas would hold them
                    cols[f.name] = np.empty(n, object)
        k = table.num_rows
        for name, arr in cols.items():
            col = table.column(name)
            if arr.dtype == object:
                arr[pos:pos + k] = col.to_pandas().to_numpy(dtype=object)
            elif arr.dtype.kind == "M":
                arr[pos:pos + k] = col.to_pandas().to_numpy("datetime64[ns]")
            else:
                arr[pos:pos + k] = col.to_numpy(zero_copy_only=False)
        pos += k
        del table
    if cols is None:  # no row in these buckets: an empty frame with the manifest's columns
        names = list(columns) if columns else list(info.columns)
        return pd.DataFrame({c: [] for c in names})
    if pos != n:
        raise ReadError(f"{str(info.path)!r} changed while it was read ({pos:,} rows read, "
                        f"{n:,} in the file footers).")
    return pd.DataFrame(cols, copy=False)
