"""``manylift partition``: an exposure table bucketed by customer, for fits past one machine."""

from __future__ import annotations


def _run(args) -> int:
    from manylift.data.partition import partition_exposures

    info = partition_exposures(args.exposures, args.out, args.buckets,
                               customer_col=args.customer_col, batch_rows=args.batch_rows,
                               row_group_rows=args.row_group_rows)
    rows = info.rows_per_bucket or ()
    spread = (f"{min(rows):,}-{max(rows):,} rows per bucket" if rows else "")
    print(f"Wrote {info.rows:,} rows in {info.n_buckets} buckets by {info.customer_col} "
          f"({spread}) to {info.path}/ (manifest {info.path.name}/_manylift_partition.json).")
    print(f"Fit it with `manylift fit {info.path}` (several processes: each reads only its "
          f"buckets; see docs/scaling.md).")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "partition", help="write an exposure table as Parquet buckets by customer",
        description="Write EXPOSURES (CSV, gzipped CSV or Parquet) as a Parquet dataset in "
                    "--buckets folders bucket=<k>, every customer's rows in one bucket (a "
                    "stable hash of the customer id), streaming in bounded memory. A fit over "
                    "several processes reads only its own buckets. The layout, which a "
                    "warehouse export can write directly, is in docs/scaling.md.",
    )
    p.add_argument("exposures", help="CSV (optionally gzipped) or Parquet file, or a folder of "
                                     "Parquet files")
    p.add_argument("--buckets", type=int, required=True,
                   help="number of buckets (a multiple of the number of processes that will "
                        "read it; e.g. 64)")
    p.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    p.add_argument("--customer-col", default="customer_id",
                   help="customer id column (default: customer_id)")
    p.add_argument("--batch-rows", type=int, default=1 << 16,
                   help="rows read from the input at a time (default 65536)")
    p.add_argument("--row-group-rows", type=int, default=1 << 18,
                   help="rows per Parquet row group, at most (default 262144)")
    p.set_defaults(func=_run)
