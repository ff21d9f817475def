"""Figures and the report section of the campaign overlap network.

Renders an :class:`~manylift.design.overlap.OverlapResult` (or one read back
from results.json with ``OverlapResult.from_dict``); it never recomputes the
network statistics.  The only computation here is the drawing layout (a seeded
spring layout), so the same result draws the same picture every time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from manylift.design.overlap import OverlapResult
from manylift.report.html import Page, fmt_num

__all__ = [
    "OverlapNetworkDisplay",
    "add_overlap_section",
    "clustering_verdict",
    "network_layout",
    "overlap_figure",
    "overlap_report",
    "overlap_summary",
]

_METHOD_NAMES = {
    "louvain": "Louvain",
    "label_propagation": "Label propagation",
    "infomap": "Infomap",
    "walktrap": "Walktrap",
}

#: Modularity thresholds of the verdicts (Newman and Girvan 2004 call values above
#: about 0.3 a sign of real community structure).
WEAK_MODULARITY = 0.1
CLEAR_MODULARITY = 0.3


def _mpl_text(text) -> str:
    """A user string made safe for matplotlib text (``$`` would start mathtext)."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def clustering_verdict(modularity: float) -> str:
    """Plain words for a modularity value: ``"no"``, ``"weak"`` or ``"clear"`` clustering."""
    if modularity is None or not np.isfinite(modularity):
        return "undefined"
    if modularity < WEAK_MODULARITY:
        return "no"
    if modularity < CLEAR_MODULARITY:
        return "weak"
    return "clear"


def network_layout(result: OverlapResult, random_state: int = 0) -> np.ndarray:
    """Campaign positions (n_campaigns x 2) from a seeded, weighted spring layout.

    Campaigns that share many customers are drawn close together.  Weights are
    scaled to a maximum of 1 so that the layout does not depend on the units.
    """
    import networkx as nx

    n = result.n_campaigns
    ids = list(result.campaigns["campaign_id"])
    position = {cid: k for k, cid in enumerate(ids)}
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    e = result.edges
    if len(e):
        w = e["shared_customers"].to_numpy(dtype=float)
        w = w / w.max()
        a = [position[c] for c in e["campaign_a"]]
        b = [position[c] for c in e["campaign_b"]]
        graph.add_weighted_edges_from(zip(a, b, w.tolist()))
    if n == 1:
        return np.zeros((1, 2))
    pos = nx.spring_layout(graph, weight="weight", seed=int(random_state))
    return np.array([pos[k] for k in range(n)])


class OverlapNetworkDisplay:
    """One panel of the campaign network: node size = customers reached, edge width =
    shared customers, node colour = an attribute or a community partition.

    Build it with :meth:`from_result`, then call :meth:`plot`.

    Examples
    --------
    >>> from manylift.design import overlap_network
    >>> r = overlap_network([1, 1, 2, 2, 3, 3], ["A", "B", "A", "C", "B", "C"])
    >>> d = OverlapNetworkDisplay.from_result(r, color_by="louvain").plot()
    >>> d.figure_ is not None
    True
    """

    def __init__(self, positions, customers, edge_index, edge_weight, groups, title,
                 legend_title, n_edges_total):
        self.positions = np.asarray(positions, dtype=float)
        self.customers = np.asarray(customers, dtype=float)
        self.edge_index = np.asarray(edge_index, dtype=np.int64).reshape(-1, 2)
        self.edge_weight = np.asarray(edge_weight, dtype=float)
        self.groups = groups  # pandas Series of group labels per campaign, or None
        self.title = title
        self.legend_title = legend_title
        self.n_edges_total = int(n_edges_total)

    @classmethod
    def from_result(cls, result: OverlapResult, color_by: str | None = None,
                    positions=None, max_edges: int = 400, random_state: int = 0):
        """Prepare a panel.

        Parameters
        ----------
        result : OverlapResult
        color_by : str, default=None
            An attribute name or a community method (``"louvain"``, ...); None
            draws every campaign in one colour.
        positions : array of shape (n_campaigns, 2), default=None
            Reuse a layout (so several panels put each campaign in the same
            place); default :func:`network_layout`.
        max_edges : int, default=400
            Draw only the strongest edges (all are used for the statistics).
        random_state : int, default=0
            Seed of the layout.
        """
        if positions is None:
            positions = network_layout(result, random_state)
        ids = list(result.campaigns["campaign_id"])
        position = {cid: k for k, cid in enumerate(ids)}
        e = result.edges.sort_values("shared_customers", ascending=False, kind="stable")
        e = e.head(max_edges)
        edge_index = np.array(
            [[position[a], position[b]] for a, b in zip(e["campaign_a"], e["campaign_b"])],
            dtype=np.int64,
        ).reshape(-1, 2)
        groups, title, legend_title = None, "Campaign overlap network", None
        if color_by is None:
            pass
        elif color_by in result.attribute_names:
            groups = result.campaigns[color_by].astype(object).where(
                result.campaigns[color_by].notna(), "(missing)")
            q = result.modularity_by_attribute.get(color_by, float("nan"))
            verdict = clustering_verdict(q)
            words = {"no": "do not cluster", "weak": "cluster weakly", "clear": "cluster",
                     "undefined": "share no customers"}[verdict]
            title = f"Campaigns {words} by {color_by} (modularity {fmt_num(q, 2)})"
            legend_title = color_by
        elif color_by in result.communities:
            groups = result.communities[color_by].reset_index(drop=True)
            k = int(groups.nunique())
            q = result.community_modularity.get(color_by, float("nan"))
            name = _METHOD_NAMES.get(color_by, color_by)
            title = (f"{name} finds {k} communit{'y' if k == 1 else 'ies'} "
                     f"(modularity {fmt_num(q, 2)})")
            legend_title = "community"
        else:
            choices = list(result.attribute_names) + list(result.communities)
            raise ValueError(f"color_by must be one of {choices} or None; got {color_by!r}.")
        return cls(positions, result.campaigns["customers"].to_numpy(), edge_index,
                   e["shared_customers"].to_numpy(), groups, title, legend_title,
                   result.n_edges)

    def plot(self, ax=None, max_legend: int = 12):
        """Draw on ``ax`` (a new figure if None); sets ``figure_`` and ``ax_``; returns self."""
        import matplotlib.pyplot as plt
        from matplotlib.collections import LineCollection

        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 5.0))
        else:
            fig = ax.figure
        pos = self.positions
        if len(self.edge_index):
            wmax = self.edge_weight.max()
            widths = 0.3 + 2.7 * self.edge_weight / wmax if wmax > 0 else 0.5
            segments = pos[self.edge_index]
            ax.add_collection(LineCollection(segments, linewidths=widths, colors="#888888",
                                             alpha=0.25, zorder=1))
        cmax = self.customers.max() if len(self.customers) and self.customers.max() > 0 else 1
        sizes = 20 + 380 * self.customers / cmax
        if self.groups is None:
            ax.scatter(pos[:, 0], pos[:, 1], s=sizes, c="#2f6db5", edgecolors="white",
                       linewidths=0.6, zorder=2)
        else:
            codes, levels = pd.factorize(pd.Series(self.groups).astype(str), sort=True)
            cmap = plt.get_cmap("tab10" if len(levels) <= 10 else "tab20")
            for k, level in enumerate(levels):
                mask = codes == k
                ax.scatter(pos[mask, 0], pos[mask, 1], s=sizes[mask], color=cmap(k % cmap.N),
                           edgecolors="white", linewidths=0.6, zorder=2,
                           label=_mpl_text(level) if k < max_legend else None)
            extra = f" (first {max_legend} of {len(levels)})" if len(levels) > max_legend else ""
            # sizes in points, not "small": panels are drawn at about 1:1 in a 1100 px page
            ax.legend(title=_mpl_text(f"{self.legend_title}{extra}"), fontsize=11,
                      title_fontsize=11, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                      frameon=False, markerscale=0.6)
        ax.set_title(_mpl_text(self.title), fontsize=12)
        ax.set_xlabel("layout position (close = many shared customers)", fontsize=10)
        ax.set_ylabel("layout position (no units)", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.autoscale_view()
        ax.set_aspect("equal", adjustable="datalim")
        self.figure_, self.ax_ = fig, ax
        return self


def overlap_figure(result: OverlapResult, color_by=None, max_edges: int = 400,
                   random_state: int = 0, ncols: int = 2):
    """A figure with one network panel per entry of ``color_by`` (same layout in each).

    ``color_by``: a list of attribute names and/or community methods; default:
    every attribute, or one plain panel when there are none.
    """
    import matplotlib.pyplot as plt

    if color_by is None:
        color_by = list(result.attribute_names) or [None]
    panels = list(color_by)
    ncols = max(1, min(ncols, len(panels)))
    nrows = int(np.ceil(len(panels) / ncols))
    # two panels a row keep labels legible at the page width (three made them ~6 px high)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.6 * ncols, 5.4 * nrows), squeeze=False)
    positions = network_layout(result, random_state)
    for ax, key in zip(axes.ravel(), panels):
        OverlapNetworkDisplay.from_result(result, key, positions=positions,
                                          max_edges=max_edges).plot(ax)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def _intro(result: OverlapResult) -> str:
    pairs = result.n_campaigns * (result.n_campaigns - 1) // 2
    comp = ("all campaigns are connected through shared customers"
            if result.n_components == 1 else
            f"the campaigns fall into {result.n_components} groups that share no customers")
    return (
        f"{result.n_campaigns:,} campaigns reached {result.n_customers:,} customers "
        f"({result.n_rows:,} exposure rows); a customer was in "
        f"{fmt_num(result.campaigns_per_customer)} campaigns on average and "
        f"{fmt_num(100 * result.share_multi_campaign)}% were in two or more. "
        f"{result.n_edges:,} of {pairs:,} campaign pairs share customers (density "
        f"{fmt_num(result.density)}; mean Jaccard overlap {fmt_num(result.mean_jaccard)}), "
        f"and {comp}."
    )


def overlap_summary(result: OverlapResult) -> list[str]:
    """Plain-words bullets for a report summary (what the network says about pooling)."""
    out = [_intro(result)]
    if result.modularity_by_attribute:
        worst = max(result.modularity_by_attribute.items(),
                    key=lambda kv: -np.inf if kv[1] is None or not np.isfinite(kv[1]) else kv[1])
        verdict = clustering_verdict(worst[1])
        if verdict == "no":
            out.append(
                "No campaign attribute separates the audiences (largest modularity "
                f"{fmt_num(worst[1], 2)}, by {worst[0]}): campaigns of every type share "
                "customers, so pooling them is supported by the data."
            )
        elif verdict in ("weak", "clear"):
            out.append(
                f"Audiences cluster {'weakly ' if verdict == 'weak' else ''}by {worst[0]} "
                f"(modularity {fmt_num(worst[1], 2)}): effects of campaigns of different "
                f"{worst[0]} are learned from partly different customers."
            )
    return out


def add_overlap_section(page: Page, result: OverlapResult, max_edges: int = 400,
                        random_state: int = 0) -> Page:
    """Add the "Overlap network" section to ``page`` (figures and tables); returns ``page``."""
    page.section(
        "Overlap network",
        "Do campaigns reach the same customers, or separate audiences? Pooling many "
        "experiments learns about a customer across campaigns only if campaigns share "
        "customers.",
    )
    page.paragraph(_intro(result))
    page.table(result.summary_frame(), caption="Campaign overlap network at a glance.")

    shown = min(max_edges, result.n_edges)
    edge_note = (f"the {shown:,} strongest of {result.n_edges:,} edges are drawn"
                 if shown < result.n_edges else "all edges are drawn")
    page.figure(
        overlap_figure(result, None, max_edges=max_edges, random_state=random_state),
        caption=(
            "Campaign network: one dot per campaign (area = customers reached), lines join "
            f"campaigns that share customers (width = shared customers; {edge_note}), colours "
            "are the campaign attribute. Same-coloured dots grouped apart from the rest would "
            "mean audiences split by that attribute."
        ),
    )
    if result.modularity_by_attribute:
        mod = pd.DataFrame(
            {
                "attribute": list(result.modularity_by_attribute),
                "groups": [int(pd.Series(result.campaigns[a]).nunique(dropna=False))
                           for a in result.modularity_by_attribute],
                "modularity": list(result.modularity_by_attribute.values()),
                "clustering": [clustering_verdict(q)
                               for q in result.modularity_by_attribute.values()],
            }
        )
        page.table(
            mod,
            caption=(
                "Weighted modularity of the partition of campaigns by each attribute: near 0 "
                f"means no clustering (below {WEAK_MODULARITY}), above {CLEAR_MODULARITY} a "
                "clear split. With no self-loops a partition unrelated to the network scores "
                "slightly below 0 (about -1/number of campaigns)."
            ),
        )
    camp = result.campaigns.sort_values(
        ["share_in_other_campaigns", "customers"], kind="stable"
    ).head(10)
    least = pd.DataFrame({
        "campaign": camp["campaign_id"].astype(str),
        "customers reached": camp["customers"],
        "linked campaigns": camp["degree"],
        "share of its customers in other campaigns (%)":
            100 * camp["share_in_other_campaigns"],
    })
    page.table(
        least,
        caption=(
            "The least-connected campaigns: a low share means an audience that other "
            "campaigns rarely reach, so its effect is learned mostly from its own customers."
        ),
    )
    if result.communities:
        page.figure(
            overlap_figure(result, list(result.communities), max_edges=max_edges,
                           random_state=random_state, ncols=min(2, len(result.communities))),
            caption=(
                "Communities found by each algorithm on the same layout (colour = community). "
                "One community, or communities mixing every attribute, mean no isolated groups "
                "of campaigns."
            ),
        )
        comm = pd.DataFrame(
            {
                "method": [_METHOD_NAMES.get(m, m) for m in result.communities],
                "communities": [int(s.nunique()) for s in result.communities.values()],
                "modularity": [result.community_modularity.get(m, float("nan"))
                               for m in result.communities],
            }
        )
        page.table(comm, caption="Communities per detection method and their modularity.")
    if len(result.agreement):
        agree = result.agreement.assign(
            method=[_METHOD_NAMES.get(m, m) for m in result.agreement["method"]]
        ).rename(columns={"n_communities": "communities", "n_groups": "attribute groups",
                          "adjusted_rand": "adjusted Rand",
                          "normalized_mutual_info": "normalized mutual information"})
        page.table(
            agree,
            caption=(
                "Agreement of the communities with each attribute (1 = identical partition, "
                "0 = no relation; adjusted Rand can be slightly negative)."
            ),
        )
    return page


def overlap_report(result: OverlapResult, title: str = "Campaign overlap network",
                   subtitle: str | None = None, max_edges: int = 400,
                   random_state: int = 0) -> Page:
    """A stand-alone report page: the plain-words summary and the overlap section."""
    page = Page(title, subtitle=subtitle)
    page.summary(overlap_summary(result))
    return add_overlap_section(page, result, max_edges=max_edges, random_state=random_state)
