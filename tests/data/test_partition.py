"""Exposure tables bucketed by customer (``manylift partition``) and read back by bucket.

* the hash is the documented one (FNV-1a 64 test vectors, the splitmix64 finaliser's
  known output, a pure-Python reimplementation), integer ids and their text agree,
  and buckets are balanced;
* partitioning keeps every row exactly once, every customer in one bucket (the
  bucket the hash gives), the manifest counts; CSV, gzipped CSV and Parquet sources
  give the same buckets; the input is not modified; the output is atomic;
* reading selected buckets row group by row group returns exactly those rows;
  per-process bucket sets are disjoint and cover all buckets;
* bounded memory (slow, in fresh subprocesses): partitioning a source of 2 M rows with
  a 0.26 M-row buffer, and reading a quarter of the buckets, peak at a fraction of the
  source's size (an all-at-once read would peak above it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from manylift._core.errors import DataError, ReadError
from manylift.data import partition as PT


def _fnv1a64(b: bytes) -> int:
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) % 2**64
    return h


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


def test_hash_is_the_documented_one():
    # published FNV-1a 64 vectors and splitmix64's first output for seed 0
    assert _fnv1a64(b"") == 0xCBF29CE484222325
    assert _fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert _fnv1a64(b"foobar") == 0x85944171F73967E8
    assert _mix(0x9E3779B97F4A7C15) == 0xE220A8397B1DCDAF
    ids = ["", "a", "foobar", "C-000017", "ünï", "3fa85f64-5717-4562-b3fc-2c963f66afa6"]
    got = PT.customer_hash(ids)
    assert [int(h) for h in got] == [_mix(_fnv1a64(s.encode())) for s in ids]
    # integer ids hash as their decimal text; whole floats as integers
    ints = [0, 7, 123456789012, -5]
    np.testing.assert_array_equal(PT.customer_hash(ints), PT.customer_hash([str(i) for i in ints]))
    np.testing.assert_array_equal(PT.bucket_of(np.array([7.0, 8.0]), 13),
                                  PT.bucket_of([7, 8], 13))
    with pytest.raises(DataError, match="missing"):
        PT.customer_hash(["a", None])
    with pytest.raises(DataError, match="integers or strings"):
        PT.customer_hash([1.5])


def test_buckets_are_balanced_for_sequential_ids():
    b = PT.bucket_of(np.arange(200_000), 16)
    counts = np.bincount(b, minlength=16)
    expected = 200_000 / 16
    # multinomial: every count within 5 sds of N / B
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), counts


def _frame(rng, n_customers=300, rows=6, string_ids=False):
    cust = np.repeat(np.arange(n_customers), rows)
    ids = np.array([f"c{i:05d}" for i in cust]) if string_ids else cust * 7 + 3
    n = cust.size
    return pd.DataFrame({
        "customer_id": ids,
        "campaign_id": rng.integers(0, 5, n),
        "week": rng.integers(0, 20, n),
        "treated": rng.integers(0, 2, n),
        "outcome": rng.normal(size=n),
        "note": rng.choice(["x", "y", "z"], n),
    })


def _sorted(df):
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "csv.gz"])
def test_partition_keeps_rows_and_customers_whole(tmp_path, rng, fmt):
    df = _frame(rng, string_ids=(fmt == "csv"))
    src = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        df.to_parquet(src, index=False, row_group_size=500)
    else:
        df.to_csv(src, index=False)
    before = src.read_bytes()
    info = PT.partition_exposures(src, tmp_path / "ds", 8, batch_rows=256, row_group_rows=64)
    assert src.read_bytes() == before  # the input is only read
    assert info.n_buckets == 8 and info.rows == len(df) and sum(info.rows_per_bucket) == len(df)
    assert info.hash == "fnv1a64-splitmix64"
    back = PT.read_partitioned(tmp_path / "ds")
    if fmt != "parquet":  # CSV ids are stored as text
        assert back["customer_id"].map(type).eq(str).all()
        back["customer_id"] = back["customer_id"].astype(df["customer_id"].dtype)
    pd.testing.assert_frame_equal(_sorted(back[df.columns]), _sorted(df), check_dtype=False)
    # every customer in exactly the bucket its hash gives, counts as in the manifest
    expected = PT.bucket_of(df["customer_id"].astype(str).to_numpy(), 8)
    for b in range(8):
        part = PT.read_partitioned(tmp_path / "ds", [b])
        assert len(part) == info.rows_per_bucket[b]
        ids = set(part["customer_id"].astype(str))
        assert ids == set(df["customer_id"].astype(str)[expected == b])
    # row groups were cut small (64 rows), so reading went group by group
    groups = list(PT.iter_row_groups(tmp_path / "ds", [0]))
    assert len(groups) > 1 and all(t.num_rows <= 64 for _, t in groups)


def test_csv_parquet_and_warehouse_style_layouts_agree(tmp_path, rng):
    df = _frame(rng, n_customers=100)
    df.to_parquet(tmp_path / "a.parquet", index=False)
    df.to_csv(tmp_path / "a.csv", index=False)
    pa_info = PT.partition_exposures(tmp_path / "a.parquet", tmp_path / "p", 4)
    csv_info = PT.partition_exposures(tmp_path / "a.csv", tmp_path / "c", 4)
    assert pa_info.rows_per_bucket == csv_info.rows_per_bucket
    # a "warehouse export": its own bucket rule, its own file names, a manifest by hand
    wh = tmp_path / "wh"
    rule = df["customer_id"] % 3
    for b in range(3):
        (wh / f"bucket={b}").mkdir(parents=True)
        df[rule == b].to_parquet(wh / f"bucket={b}" / "000000_0.parquet", index=False)
    (wh / PT.MANIFEST).write_text(json.dumps({"format": "manylift-partition", "version": 1,
                                              "buckets": 3, "hash": "customer_id mod 3",
                                              "rows": len(df)}))
    assert PT.is_partitioned(wh)
    got = PT.read_partitioned(wh, PT.process_buckets(3, 2, 1))
    pd.testing.assert_frame_equal(_sorted(got), _sorted(df[rule == 1]), check_dtype=False)


def test_process_buckets_cover_all_disjointly():
    for B, P in ((8, 2), (64, 3), (5, 5)):
        sets = [PT.process_buckets(B, P, i) for i in range(P)]
        flat = sorted(b for s in sets for b in s)
        assert flat == list(range(B))
        assert max(map(len, sets)) - min(map(len, sets)) <= 1
    with pytest.raises(DataError, match="at least as many buckets"):
        PT.process_buckets(2, 3, 0)
    with pytest.raises(DataError, match="process id"):
        PT.process_buckets(8, 2, 2)


def test_errors_and_atomic_output(tmp_path, rng):
    df = _frame(rng, n_customers=20)
    src = tmp_path / "in.parquet"
    df.to_parquet(src, index=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(DataError, match="not empty"):
        PT.partition_exposures(src, tmp_path / "full", 4)
    assert (tmp_path / "full" / "x").read_text() == "keep"
    with pytest.raises(DataError, match="--customer-col"):
        PT.partition_exposures(src, tmp_path / "o1", 4, customer_col="cid")
    with pytest.raises(ReadError, match="does not exist"):
        PT.partition_exposures(tmp_path / "nope.parquet", tmp_path / "o2", 4)
    # a CSV whose column changes type part-way fails cleanly and leaves nothing behind
    bad = tmp_path / "bad.csv"
    lines = ["customer_id,outcome"] + [f"{i},{i}" for i in range(20_000)] + ["20001,abc"]
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReadError, match="convert the file"):
        PT.partition_exposures(bad, tmp_path / "o3", 4, batch_rows=100)
    assert not (tmp_path / "o3").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o3.")]
    with pytest.raises(ReadError, match="not a partitioned dataset"):
        PT.read_partitioned(tmp_path)
    # a manifest that disagrees with the folders
    PT.partition_exposures(src, tmp_path / "ok", 4)
    (tmp_path / "ok" / "bucket=9").mkdir()
    with pytest.raises(ReadError, match="outside buckets"):
        PT.read_partition_info(tmp_path / "ok")


def test_cli_partition(tmp_path, rng, capsys):
    from manylift.cli.main import main

    df = _frame(rng, n_customers=50)
    df.to_csv(tmp_path / "e.csv.gz", index=False)
    assert main(["partition", str(tmp_path / "e.csv.gz"), "--buckets", "4", "--out",
                 str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert f"Wrote {len(df):,} rows in 4 buckets" in out
    assert PT.read_partition_info(tmp_path / "ds").rows == len(df)
    assert main(["partition", str(tmp_path / "e.csv.gz"), "--buckets", "0", "--out",
                 str(tmp_path / "ds2")]) == 2
    assert "buckets" in capsys.readouterr().err


# -- bounded memory, in fresh processes --------------------------------------------
_MEM = textwrap.dedent("""
    import json, sys, tracemalloc
    import pandas, pyarrow as pa, pyarrow.csv, pyarrow.parquet  # loaded before the baseline
    from manylift.data import partition as PT

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    what, src, out = sys.argv[1:4]
    base = status("VmRSS")
    tracemalloc.start()  # numpy and Python allocations (Arrow's pool is counted apart)
    res = {}
    if what == "partition":
        PT.partition_exposures(src, out, 8, batch_rows=1 << 15, row_group_rows=1 << 15,
                               buffer_rows=1 << 18)
    else:
        df = PT.read_partitioned(src, PT.process_buckets(8, 4, 1))
        res = {"rows": len(df), "bytes": int(df.memory_usage(index=False).sum())}
    res.update(rss_peak_delta=status("VmHWM") - base, traced_peak=tracemalloc.get_traced_memory()[1],
               arrow_peak=pa.default_memory_pool().max_memory())
    print(json.dumps(res))
""")


def _write_source(path, n, gen):
    """n rows, 6 columns of 8 bytes, 20 rows per customer, row groups of 2^16 rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.int64()) for c in ("customer_id", "campaign_id", "week", "treated")]
                       + [(c, pa.float64()) for c in ("outcome", "x")])
    with pq.ParquetWriter(path, schema) as w:
        for s in range(0, n, 1 << 18):
            m = min(1 << 18, n - s)
            w.write_table(pa.table({
                "customer_id": np.arange(s, s + m) // 20, "campaign_id": gen.integers(0, 140, m),
                "week": gen.integers(0, 96, m), "treated": gen.integers(0, 2, m),
                "outcome": gen.normal(size=m), "x": gen.normal(size=m)}, schema=schema),
                row_group_size=1 << 16)


@pytest.mark.slow
def test_partition_and_read_in_bounded_memory(tmp_path):
    """Partitioning 1 M and 4 M rows (48 and 192 MB in memory) with a buffer of 2^18 rows
    (12.6 MB): the peak does not grow with the source.  Reading a quarter of the buckets
    (48 MB) row group by row group: the peak is the result plus one row group (plus the
    libraries' constant overhead), where reading all 192 MB first would peak above it."""
    gen = np.random.default_rng(0)
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(*argv):
        proc = subprocess.run([sys.executable, "-c", _MEM, *argv], capture_output=True, text=True,
                              timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    peaks = {}
    for n in (1_000_000, 4_000_000):
        _write_source(tmp_path / f"src{n}.parquet", n, gen)
        peaks[n] = run("partition", str(tmp_path / f"src{n}.parquet"), str(tmp_path / f"ds{n}"))
    small, big = peaks[1_000_000], peaks[4_000_000]
    grown = 3_000_000 * 48
    # 4x the source, the same peak (within 10% of the 144 MB more it read)
    assert big["rss_peak_delta"] - small["rss_peak_delta"] < 0.1 * grown, peaks
    for p in (small, big):
        assert p["arrow_peak"] < 40e6 and p["traced_peak"] < 40e6, peaks  # buffer + batches
    read = run("read", str(tmp_path / "ds4000000"), "")
    assert abs(read["rows"] - 1_000_000) < 20_000
    # the result is all the numpy memory there is; Arrow held about one row group at a time
    assert read["traced_peak"] < 1.05 * read["bytes"] + 1e6, read
    assert read["arrow_peak"] < 10e6, read
    assert read["rss_peak_delta"] < read["bytes"] + 64e6, read  # plus a constant, not 192 MB


def test_read_table_reads_a_partitioned_folder(tmp_path, rng):
    from manylift.data.io import read_table

    df = _frame(rng, n_customers=40)
    df.to_parquet(tmp_path / "e.parquet", index=False)
    PT.partition_exposures(tmp_path / "e.parquet", tmp_path / "ds", 4)
    pd.testing.assert_frame_equal(_sorted(read_table(tmp_path / "ds")), _sorted(df),
                                  check_dtype=False)
    two = read_table(tmp_path / "ds", buckets=[0, 2], columns=["customer_id", "outcome"])
    assert list(two.columns) == ["customer_id", "outcome"]
    assert set(PT.bucket_of(two["customer_id"].to_numpy(), 4)) <= {0, 2}
    with pytest.raises(ReadError, match="without a manylift partition manifest"):
        read_table(tmp_path)
    with pytest.raises(ReadError, match="only a partitioned folder"):
        read_table(tmp_path / "e.parquet", buckets=[0])
