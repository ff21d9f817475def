"""``manylift overlap``: the campaign overlap network, as a quick text summary."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from manylift._core.atomic import write_json
from manylift._core.errors import ColumnError, DataError
from manylift.cli._common import csv_list
from manylift.data.io import read_table
from manylift.design.overlap import OVERLAP_METHODS, OverlapResult, overlap_network
from manylift.report.overlap import overlap_report, overlap_summary

SCHEMA_VERSION = 1

_EPILOG = """\
examples:
  manylift overlap exposures.parquet
  manylift overlap exposures.csv.gz --campaigns campaigns.csv --attributes goal,reward
  manylift overlap exposures.parquet --campaigns campaigns.csv --out overlap/

EXPOSURES has one row per customer per intervention (only the customer and
campaign columns are read). The campaign table has one row per campaign: the
campaign column plus categorical attributes (goal, action, reward, ...).
Modularity near 0 means campaigns of different attributes share customers;
above about 0.3 means audiences split by that attribute. See docs/overlap.md.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "overlap",
        help="do campaigns share customers? density, modularity by attribute, communities",
        description=(
            "Build the campaign-customer network (two campaigns are linked by the number of "
            "customers they share) and print its density, the modularity of the partition "
            "by each campaign attribute, and the communities found by Louvain, label "
            "propagation, Infomap and Walktrap with their agreement (adjusted Rand, "
            "normalized mutual information) with each attribute."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("exposures", metavar="EXPOSURES",
                   help="exposure rows: CSV (optionally gzipped) or Parquet")
    p.add_argument("--campaigns", default=None, metavar="FILE",
                   help="campaign table (CSV or Parquet) with the campaign column and attributes")
    p.add_argument("--customer-col", default="customer_id",
                   help="customer id column of EXPOSURES (default: customer_id)")
    p.add_argument("--campaign-col", default="campaign_id",
                   help="campaign id column of EXPOSURES and of the campaign table "
                        "(default: campaign_id)")
    p.add_argument("--attributes", default=None, metavar="A,B",
                   help="comma-separated attribute columns of the campaign table (default: "
                        "every non-float column except the campaign column)")
    p.add_argument("--methods", default=",".join(OVERLAP_METHODS), metavar="M,N",
                   help=f"community methods (default: {','.join(OVERLAP_METHODS)})")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the community methods and the layout (default: 0)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write DIR/results.json and DIR/report.html")
    p.set_defaults(func=run)


def _columns_of(path: str) -> list[str] | None:
    """Column names of a table without reading its rows (None if that fails)."""
    name = Path(path).name.lower()
    try:
        if name.endswith((".parquet", ".pq", ".parq")):
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        sep = "\t" if name.endswith(".tsv") else ","
        return list(pd.read_csv(path, nrows=0, sep=sep).columns)
    except Exception:  # noqa: BLE001 - only used to improve an error message
        return None


def _read_exposures(path: str, customer_col: str, campaign_col: str) -> pd.DataFrame:
    wanted = [customer_col, campaign_col]
    try:
        return read_table(path, columns=wanted)
    except DataError:
        columns = _columns_of(path) if Path(path).is_file() else None
        if columns is not None:
            absent = [c for c in wanted if c not in columns]
            if absent:
                raise ColumnError(
                    f"EXPOSURES {path!r} has no column(s) {absent}; its columns are "
                    f"{columns}. Name the right ones with --customer-col / --campaign-col."
                ) from None
        raise


def _read_campaigns(path: str, campaign_col: str) -> pd.DataFrame:
    table = read_table(path)
    if campaign_col not in table.columns:
        raise ColumnError(
            f"The campaign table {path!r} has no column {campaign_col!r}; its columns are "
            f"{list(table.columns)}. Rename its id column or pass --campaign-col."
        )
    return table


def format_summary(result: OverlapResult) -> str:
    """The text summary printed by ``manylift overlap``."""
    pairs = result.n_campaigns * (result.n_campaigns - 1) // 2
    lines = [
        "Campaign overlap network",
        f"  campaigns: {result.n_campaigns:,}   customers: {result.n_customers:,}   "
        f"rows: {result.n_rows:,}",
        f"  campaigns per customer: {result.campaigns_per_customer:.2f}   "
        f"customers in 2+ campaigns: {100 * result.share_multi_campaign:.1f}%",
        f"  edges: {result.n_edges:,} of {pairs:,} campaign pairs share customers "
        f"(density {_f(result.density)})",
        f"  mean Jaccard overlap of two campaigns: {_f(result.mean_jaccard)}   "
        f"connected components: {result.n_components}",
    ]
    if len(result.edges):
        w = result.edges["shared_customers"].to_numpy()
        lines.append(
            f"  shared customers per linked pair: median {np.median(w):,.0f} "
            f"(min {w.min():,}, max {w.max():,})"
        )
    lines.append("")
    if result.modularity_by_attribute:
        lines.append("Modularity of the partition by attribute "
                     "(near 0: no clustering; above 0.3: audiences split)")
        width = max(len(a) for a in result.modularity_by_attribute)
        for a, q in result.modularity_by_attribute.items():
            groups = result.campaigns[a].nunique(dropna=False)
            lines.append(f"  {a:<{width}}  {_f(q):>7}   ({groups} groups)")
    else:
        lines.append("No campaign attributes given (--campaigns FILE): modularity by "
                     "attribute not computed.")
    lines.append("")
    if result.communities:
        lines.append("Communities")
        table = pd.DataFrame(
            {
                "method": list(result.communities),
                "communities": [int(s.nunique()) for s in result.communities.values()],
                "modularity": [_f(result.community_modularity.get(m))
                               for m in result.communities],
            }
        )
        lines += ["  " + x for x in table.to_string(index=False).splitlines()]
    if len(result.agreement):
        lines.append("")
        lines.append("Agreement of communities with attributes "
                     "(adjusted Rand / normalized mutual information; 1 = same partition)")
        agree = result.agreement.copy()
        agree["ARI/NMI"] = [f"{_f(a, 2)}/{_f(b, 2)}" for a, b in
                            zip(agree["adjusted_rand"], agree["normalized_mutual_info"])]
        wide = agree.pivot(index="method", columns="attribute", values="ARI/NMI")
        wide = wide.reindex(index=list(result.communities),
                            columns=list(result.attribute_names))
        wide.columns.name = None
        lines += ["  " + x for x in wide.reset_index().to_string(index=False).splitlines()]
    bullets = overlap_summary(result)[1:]
    if bullets:
        lines.append("")
        lines += bullets
    return "\n".join(lines)


def _f(x, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    exposures = _read_exposures(args.exposures, args.customer_col, args.campaign_col)
    campaigns = (_read_campaigns(args.campaigns, args.campaign_col)
                 if args.campaigns is not None else None)
    attribute_cols = csv_list(args.attributes)
    if attribute_cols and campaigns is None:
        raise DataError("--attributes needs a campaign table: pass --campaigns FILE.")
    methods = csv_list(args.methods) or []
    result = overlap_network(
        exposures[args.customer_col],
        exposures[args.campaign_col],
        campaigns,
        attribute_cols=attribute_cols,
        campaign_col=args.campaign_col,
        methods=methods,
        random_state=args.seed,
    )
    print(format_summary(result))
    if args.out is not None:
        out = Path(args.out)
        results = {
            "schema_version": SCHEMA_VERSION,
            "command": "overlap",
            "inputs": {
                "exposures": str(args.exposures),
                "campaigns": None if args.campaigns is None else str(args.campaigns),
                "customer_col": args.customer_col,
                "campaign_col": args.campaign_col,
            },
            **result.to_dict(),
        }
        write_json(out / "results.json", results)
        overlap_report(result, subtitle=f"Exposures: {args.exposures}",
                       random_state=args.seed).save(out / "report.html")
        print(f"\nWrote {out / 'results.json'} and {out / 'report.html'}")
    return 0
