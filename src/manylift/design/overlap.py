"""The campaign overlap network: do campaigns share customers, or form islands?

Pooling many experiments under one hierarchical prior assumes that what is
learned about a customer in one campaign carries to the others.  That needs
the campaigns to be linked through shared customers rather than split into
isolated audiences.  This module builds the campaign-customer bipartite graph,
projects it onto campaigns (edge weight = number of shared customers), and
measures how much the projection clusters: density, modularity of the
partitions given by each campaign attribute, and communities found by several
standard algorithms with their agreement with the attributes.

The projection is one sparse matrix product ``B B'`` of the campaign x customer
incidence matrix ``B``, so the paper's scale (16 million rows, 584,000
customers, 140 campaigns) takes seconds.  Graph algorithms come from networkx
and igraph; none are written here.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from manylift._core.checks import check_in, example_ids
from manylift._core.errors import ColumnError, DataError
from manylift._core.rng import seed_int

__all__ = ["OverlapResult", "overlap_network", "OVERLAP_METHODS"]

#: Community-detection methods, in the order they are reported.
OVERLAP_METHODS = ("louvain", "label_propagation", "infomap", "walktrap")

_MISSING = "(missing)"


@dataclass(frozen=True, repr=False)
class OverlapResult:
    """The campaign overlap network and its clustering statistics.

    Attributes
    ----------
    n_campaigns, n_customers, n_rows : int
        Distinct campaigns, distinct customers and input rows (exposures).
    n_edges : int
        Campaign pairs that share at least one customer.
    density : float
        ``n_edges / (n_campaigns (n_campaigns - 1) / 2)``: 1 means every pair of
        campaigns shares customers (a complete graph); NaN for one campaign.
    mean_jaccard : float
        Mean over all campaign pairs of shared / (reached by either): how much
        the audiences overlap, not just whether they touch.
    n_components : int
        Connected components of the projection (1: no isolated groups).
    campaigns_per_customer : float
        Mean number of distinct campaigns per customer.
    share_multi_campaign : float
        Share of customers reached by two or more campaigns.
    campaigns : pandas.DataFrame
        One row per campaign: ``campaign_id``, ``customers`` (reached),
        ``degree`` (campaigns it shares customers with), ``shared_customers``
        (sum of its edge weights), ``share_in_other_campaigns`` (share of its
        customers also reached by another campaign; near 0 = an isolated
        audience), then one column per attribute.
    edges : pandas.DataFrame
        ``campaign_a, campaign_b, shared_customers`` for every pair with at
        least one shared customer (``campaign_a`` before ``campaign_b`` in the
        order of ``campaigns``).
    modularity_by_attribute : dict
        Attribute -> weighted modularity of the partition of campaigns by its
        values (near 0: the attribute does not separate audiences).
    communities : dict
        Method -> ``pandas.Series`` of community labels indexed by campaign id
        (0 is the largest community).
    community_modularity : dict
        Method -> weighted modularity of its communities.
    agreement : pandas.DataFrame
        One row per (method, attribute): ``n_communities``, ``n_groups``,
        ``adjusted_rand`` and ``normalized_mutual_info`` between the
        communities and the attribute's groups.
    attribute_names : tuple of str
    methods : tuple of str
    random_state : int
    """

    n_campaigns: int
    n_customers: int
    n_rows: int
    n_edges: int
    density: float
    mean_jaccard: float
    n_components: int
    campaigns_per_customer: float
    share_multi_campaign: float
    campaigns: pd.DataFrame
    edges: pd.DataFrame
    modularity_by_attribute: dict = field(default_factory=dict)
    communities: dict = field(default_factory=dict)
    community_modularity: dict = field(default_factory=dict)
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    attribute_names: tuple = ()
    methods: tuple = ()
    random_state: int = 0

    # -- views -------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per campaign: reach, degree, attributes and a community column per method."""
        out = self.campaigns.copy()
        for method, labels in self.communities.items():
            out[f"community_{method}"] = labels.to_numpy()
        return out

    def summary_frame(self) -> pd.DataFrame:
        """The headline numbers as a two-column table (``statistic``, ``value``)."""
        rows = [
            ("campaigns", self.n_campaigns),
            ("customers", self.n_customers),
            ("rows", self.n_rows),
            ("edges", self.n_edges),
            ("density", self.density),
            ("mean Jaccard overlap", self.mean_jaccard),
            ("connected components", self.n_components),
            ("campaigns per customer", self.campaigns_per_customer),
            ("share of customers in 2+ campaigns", self.share_multi_campaign),
        ]
        rows += [(f"modularity by {a}", q) for a, q in self.modularity_by_attribute.items()]
        return pd.DataFrame(rows, columns=["statistic", "value"])

    def to_dict(self) -> dict:
        """A JSON-ready dict (see docs/overlap.md for the keys); :meth:`from_dict` inverts it."""
        camp = self.campaigns
        comm = {}
        for method, labels in self.communities.items():
            comm[method] = {
                "n_communities": int(labels.nunique()),
                "modularity": _float(self.community_modularity.get(method)),
                "labels": [int(v) for v in labels.to_numpy()],
            }
        agreement: dict = {}
        for rec in self.agreement.itertuples(index=False):
            agreement.setdefault(rec.method, {})[rec.attribute] = {
                "n_communities": int(rec.n_communities),
                "n_groups": int(rec.n_groups),
                "adjusted_rand": _float(rec.adjusted_rand),
                "normalized_mutual_info": _float(rec.normalized_mutual_info),
            }
        return {
            "data": {
                "rows": self.n_rows,
                "customers": self.n_customers,
                "campaigns": self.n_campaigns,
            },
            "network": {
                "edges": self.n_edges,
                "density": _float(self.density),
                "mean_jaccard": _float(self.mean_jaccard),
                "components": self.n_components,
                "campaigns_per_customer": _float(self.campaigns_per_customer),
                "share_multi_campaign": _float(self.share_multi_campaign),
            },
            "modularity_by_attribute": {
                a: _float(q) for a, q in self.modularity_by_attribute.items()
            },
            "communities": comm,
            "agreement": agreement,
            "campaigns": {
                "campaign_id": [_plain(v) for v in camp["campaign_id"]],
                "customers": [int(v) for v in camp["customers"]],
                "degree": [int(v) for v in camp["degree"]],
                "shared_customers": [int(v) for v in camp["shared_customers"]],
                "share_in_other_campaigns": [
                    float(v) for v in camp["share_in_other_campaigns"]
                ],
                "attributes": {
                    a: [_plain(v) for v in camp[a]] for a in self.attribute_names
                },
            },
            "edges": {
                "campaign_a": [_plain(v) for v in self.edges["campaign_a"]],
                "campaign_b": [_plain(v) for v in self.edges["campaign_b"]],
                "shared_customers": [int(v) for v in self.edges["shared_customers"]],
            },
            "settings": {"methods": list(self.methods), "random_state": self.random_state},
        }

    @classmethod
    def from_dict(cls, d: dict) -> OverlapResult:
        """Rebuild a result from :meth:`to_dict` (e.g. read back from results.json)."""
        c = d["campaigns"]
        names = tuple(c.get("attributes", {}))
        campaigns = pd.DataFrame(
            {
                "campaign_id": c["campaign_id"],
                "customers": np.asarray(c["customers"], dtype=np.int64),
                "degree": np.asarray(c["degree"], dtype=np.int64),
                "shared_customers": np.asarray(c["shared_customers"], dtype=np.int64),
                "share_in_other_campaigns": np.asarray(
                    c["share_in_other_campaigns"], dtype=float
                ),
            }
        )
        for a in names:
            campaigns[a] = c["attributes"][a]
        ids = pd.Index(campaigns["campaign_id"], name="campaign_id")
        e = d["edges"]
        edges = pd.DataFrame(
            {
                "campaign_a": e["campaign_a"],
                "campaign_b": e["campaign_b"],
                "shared_customers": np.asarray(e["shared_customers"], dtype=np.int64),
            }
        )
        communities = {
            m: pd.Series(np.asarray(v["labels"], dtype=np.int64), index=ids, name=m)
            for m, v in d.get("communities", {}).items()
        }
        community_modularity = {
            m: _nan(v.get("modularity")) for m, v in d.get("communities", {}).items()
        }
        rows = [
            (m, a, v["n_communities"], v["n_groups"], _nan(v["adjusted_rand"]),
             _nan(v["normalized_mutual_info"]))
            for m, per in d.get("agreement", {}).items()
            for a, v in per.items()
        ]
        net = d["network"]
        settings = d.get("settings", {})
        return cls(
            n_campaigns=int(d["data"]["campaigns"]),
            n_customers=int(d["data"]["customers"]),
            n_rows=int(d["data"]["rows"]),
            n_edges=int(net["edges"]),
            density=_nan(net["density"]),
            mean_jaccard=_nan(net["mean_jaccard"]),
            n_components=int(net["components"]),
            campaigns_per_customer=_nan(net["campaigns_per_customer"]),
            share_multi_campaign=_nan(net["share_multi_campaign"]),
            campaigns=campaigns,
            edges=edges,
            modularity_by_attribute={
                a: _nan(q) for a, q in d.get("modularity_by_attribute", {}).items()
            },
            communities=communities,
            community_modularity=community_modularity,
            agreement=pd.DataFrame(rows, columns=_AGREEMENT_COLUMNS),
            attribute_names=names,
            methods=tuple(settings.get("methods", communities)),
            random_state=int(settings.get("random_state", 0)),
        )

    def __repr__(self) -> str:
        lines = [
            f"OverlapResult({self.n_campaigns} campaigns, {self.n_customers:,} customers, "
            f"{self.n_edges:,} edges, density {self.density:.3f}, "
            f"mean Jaccard {self.mean_jaccard:.3f}, {self.n_components} component(s))"
        ]
        for a, q in self.modularity_by_attribute.items():
            lines.append(f"  modularity by {a}: {q:.3f}")
        for m, labels in self.communities.items():
            q = self.community_modularity.get(m, float("nan"))
            lines.append(f"  {m}: {labels.nunique()} communities (modularity {q:.3f})")
        return "\n".join(lines)


_AGREEMENT_COLUMNS = [
    "method",
    "attribute",
    "n_communities",
    "n_groups",
    "adjusted_rand",
    "normalized_mutual_info",
]


def _float(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


def _plain(v):
    """A JSON-friendly scalar (numpy scalars to Python, NaN to None)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


# -- input checks --------------------------------------------------------------
def _as_ids(name: str, values) -> pd.Series:
    if values is None:
        raise DataError(f"{name!r} is None; pass one id per exposure row.")
    if np.ndim(values) != 1:
        raise DataError(
            f"{name!r} must be one-dimensional (one id per exposure row); got shape "
            f"{np.shape(values)}."
        )
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    s = s.reset_index(drop=True)
    missing = np.flatnonzero(s.isna().to_numpy())
    if missing.size:
        raise DataError(
            f"{name!r} has {missing.size} missing value(s) at position(s) "
            f"{example_ids(missing)}. Drop those rows before building the overlap network."
        )
    return s


def _factorize_campaigns(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    try:
        codes, uniques = pd.factorize(ids, sort=True)
    except TypeError:  # ids of mixed types cannot be sorted: keep first-seen order
        codes, uniques = pd.factorize(ids, sort=False)
    # plain values, not a CategoricalIndex (categorical ids come from ExperimentData)
    return codes, pd.Index(np.asarray(uniques))


def _align_attributes(
    attributes, campaign_index: pd.Index, campaign_col: str, attribute_cols
) -> pd.DataFrame:
    """Return the attribute table with one row per campaign, in ``campaign_index`` order."""
    if attributes is None:
        if attribute_cols:
            raise DataError(
                f"'attribute_cols' names {list(attribute_cols)} but no campaign table was "
                f"given; pass 'attributes' too."
            )
        return pd.DataFrame(index=range(len(campaign_index)))
    if not isinstance(attributes, pd.DataFrame):
        raise DataError(
            f"'attributes' must be a pandas DataFrame (one row per campaign); got "
            f"{type(attributes).__name__}."
        )
    table = attributes
    if campaign_col in table.columns:
        table = table.set_index(campaign_col)
    if attribute_cols is None:
        # Continuous columns (e.g. cost) do not define groups of campaigns.
        attribute_cols = [c for c in table.columns if not pd.api.types.is_float_dtype(table[c])]
    else:
        attribute_cols = list(attribute_cols)
        absent = [c for c in attribute_cols if c not in table.columns]
        if absent:
            raise ColumnError(
                f"Attribute column(s) {absent} are not in the campaign table; its columns "
                f"are {list(table.columns)}. Pass existing column names in 'attribute_cols'."
            )
    table = table[attribute_cols]
    dup = table.index[table.index.duplicated()].unique()
    if len(dup):
        raise DataError(
            f"The campaign table lists {len(dup)} campaign id(s) more than once "
            f"({example_ids(dup)}). Keep one row per campaign."
        )
    index = table.index
    found = campaign_index.isin(index)
    if not found.all():
        # A CSV read can turn ids into numbers on one side and strings on the other.
        str_index = pd.Index(index.astype(str))
        if pd.Index(campaign_index.astype(str)).isin(str_index).all() and str_index.is_unique:
            table = table.set_axis(str_index, axis=0)
            return table.loc[campaign_index.astype(str)].reset_index(drop=True)
        absent = campaign_index[~found]
        where = (f"column {campaign_col!r}" if campaign_col in attributes.columns
                 else "its index")
        raise ColumnError(
            f"{len(absent)} of {len(campaign_index)} campaign id(s) in the exposures are "
            f"missing from the campaign table ({where}): {example_ids(absent)}. Add a row "
            f"for each campaign, or pass the right campaign column."
        )
    return table.loc[campaign_index].reset_index(drop=True)


# -- graph helpers ------------------------------------------------------------
@contextlib.contextmanager
def _igraph_seeded(seed: int):
    """igraph draws from a global RNG: seed it for the call, then restore the default."""
    import igraph

    igraph.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        igraph.set_random_number_generator(random)


def _relabel(membership: np.ndarray) -> np.ndarray:
    """Canonical labels: 0 is the largest community, ties broken by first campaign."""
    membership = np.asarray(membership)
    uniq, first, inverse, counts = np.unique(
        membership, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.lexsort((first, -counts))  # by size desc, then first appearance
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inverse.reshape(-1)]


def _sets_to_membership(sets, n: int) -> np.ndarray:
    membership = np.empty(n, dtype=np.int64)
    for k, nodes in enumerate(sets):
        membership[list(nodes)] = k
    return membership


def _partition(membership: np.ndarray) -> list[set]:
    return [set(np.flatnonzero(membership == k).tolist()) for k in np.unique(membership)]


def _detect(method: str, nx_graph, ig_graph, n: int, seed: int) -> np.ndarray:
    import networkx as nx

    if method == "louvain":
        sets = nx.community.louvain_communities(nx_graph, weight="weight", seed=seed)
        return _sets_to_membership(sets, n)
    if method == "label_propagation":
        # The asynchronous version of Raghavan et al. (2007): it uses the weights
        # and a seed (networkx's semi-synchronous variant uses neither).
        sets = nx.community.asyn_lpa_communities(nx_graph, weight="weight", seed=seed)
        return _sets_to_membership(sets, n)
    if method == "infomap":
        with _igraph_seeded(seed):
            clustering = ig_graph.community_infomap(edge_weights="weight", trials=10)
        return np.asarray(clustering.membership, dtype=np.int64)
    if method == "walktrap":
        dendrogram = ig_graph.community_walktrap(weights="weight", steps=4)
        return np.asarray(dendrogram.as_clustering().membership, dtype=np.int64)
    raise AssertionError(method)  # pragma: no cover - checked by the caller


# -- the public function -------------------------------------------------------
def overlap_network(
    customer_ids,
    campaign_ids,
    attributes: pd.DataFrame | None = None,
    *,
    attribute_cols=None,
    campaign_col: str = "campaign_id",
    methods=OVERLAP_METHODS,
    random_state=0,
) -> OverlapResult:
    """Build the campaign overlap network and measure how much it clusters.

    Each exposure row links a customer to a campaign (repeated rows of the same
    pair, e.g. across weeks, count once).  The one-mode projection connects two
    campaigns with weight = number of customers they share.  On that weighted
    graph this computes the density, the modularity of the partition of
    campaigns by each attribute, and communities from several algorithms with
    their agreement with each attribute.

    Parameters
    ----------
    customer_ids, campaign_ids : array-like of shape (n_rows,)
        The customer and the campaign of each exposure row (ints or strings).
    attributes : pandas.DataFrame, default=None
        Campaign table: one row per campaign, indexed by campaign id or with a
        ``campaign_col`` column.  Each attribute is treated as categorical
        (missing values form their own group, ``"(missing)"``).  Rows for
        campaigns not in the exposures are ignored.
    attribute_cols : list of str, default=None
        The attribute columns to use; default: every column of ``attributes``
        except ``campaign_col`` and float columns (continuous values such as
        ``cost`` do not group campaigns).
    campaign_col : str, default="campaign_id"
        The id column of ``attributes`` (if absent, its index is used).
    methods : sequence of str, default=("louvain", "label_propagation", "infomap", "walktrap")
        Community-detection methods to run (any subset, in this order).
    random_state : int, default=0
        Seeds Louvain, label propagation and Infomap (Walktrap is deterministic).

    Returns
    -------
    OverlapResult

    Notes
    -----
    The projection is ``W = B B'`` for the 0/1 campaign x customer incidence
    matrix ``B`` (``scipy.sparse``); the diagonal of ``W`` is each campaign's
    reach.  Modularity is Newman's weighted modularity (resolution 1),
    ``Q = sum_c [ W_c / m - (S_c / 2m)^2 ]`` with ``W_c`` the weight inside group
    ``c``, ``S_c`` the sum of its campaigns' strengths and ``m`` the total edge
    weight; it is NaN when no two campaigns share a customer.  Agreement uses
    scikit-learn's adjusted Rand index and normalized mutual information.

    References
    ----------
    .. [1] Wasserman, S. and Faust, K. (1994). *Social Network Analysis: Methods
       and Applications*. Cambridge University Press.
    .. [2] Newman, M. E. J. (2004). Analysis of weighted networks. *Physical
       Review E*, 70, 056131.
    .. [3] Blondel, V. D., Guillaume, J.-L., Lambiotte, R. and Lefebvre, E.
       (2008). Fast unfolding of communities in large networks. *J. Stat. Mech.*,
       P10008.
    .. [4] Raghavan, U. N., Albert, R. and Kumara, S. (2007). Near linear time
       algorithm to detect community structures in large-scale networks.
       *Physical Review E*, 76, 036106.
    .. [5] Rosvall, M. and Bergstrom, C. T. (2008). Maps of random walks on
       complex networks reveal community structure. *PNAS*, 105(4), 1118-1123.
    .. [6] Pons, P. and Latapy, M. (2005). Computing communities in large
       networks using random walks. *ISCIS 2005*, 284-293.

    Examples
    --------
    >>> r = overlap_network(["u1", "u1", "u2", "u2", "u3"], ["A", "B", "A", "B", "C"])
    >>> r.edges
      campaign_a campaign_b  shared_customers
    0          A          B                 2
    >>> round(r.density, 3)
    0.333
    """
    import networkx as nx
    import scipy.sparse as sp

    customers = _as_ids("customer_ids", customer_ids)
    campaigns = _as_ids("campaign_ids", campaign_ids)
    if len(customers) != len(campaigns):
        raise DataError(
            f"'customer_ids' has {len(customers)} values but 'campaign_ids' has "
            f"{len(campaigns)}; pass one customer and one campaign per exposure row."
        )
    if len(customers) == 0:
        raise DataError(
            "No exposure rows: 'customer_ids' and 'campaign_ids' are empty. Pass at least "
            "one (customer, campaign) row."
        )
    methods = tuple(methods)
    for m in methods:
        check_in("methods", m, OVERLAP_METHODS, where="overlap_network")
    seed = seed_int(random_state)

    cust_codes, cust_uniques = pd.factorize(customers, sort=False)
    camp_codes, camp_index = _factorize_campaigns(campaigns)
    n_camp, n_cust = len(camp_index), len(cust_uniques)
    table = _align_attributes(attributes, camp_index, campaign_col, attribute_cols)
    attribute_names = tuple(str(c) for c in table.columns)
    table.columns = list(attribute_names)

    # Incidence B (campaign x customer), duplicates collapsed to 1; W = B B'.
    index_dtype = np.int32 if max(n_camp, n_cust) < 2**31 else np.int64
    incidence = sp.csr_matrix(
        (
            np.ones(len(cust_codes), dtype=np.int32),
            (camp_codes.astype(index_dtype), cust_codes.astype(index_dtype)),
        ),
        shape=(n_camp, n_cust),
    )
    incidence.sum_duplicates()
    incidence.data[:] = 1
    per_customer = np.bincount(incidence.indices, minlength=n_cust)
    # customers of each campaign who were also in another campaign: B @ 1{customer in 2+}
    in_other = incidence @ (per_customer >= 2).astype(np.int64)
    shared = (incidence @ incidence.T).toarray().astype(np.int64)
    reach = np.diag(shared).copy()
    np.fill_diagonal(shared, 0)

    rows, cols = np.triu_indices(n_camp, k=1)
    weights = shared[rows, cols]
    keep = weights > 0
    ea, eb, ew = rows[keep], cols[keep], weights[keep]
    n_pairs = n_camp * (n_camp - 1) // 2
    density = len(ew) / n_pairs if n_pairs else float("nan")
    union = reach[rows] + reach[cols] - weights
    mean_jaccard = float(np.mean(weights / union)) if n_pairs else float("nan")

    graph = nx.Graph()
    graph.add_nodes_from(range(n_camp))
    graph.add_weighted_edges_from(zip(ea.tolist(), eb.tolist(), ew.tolist()))
    n_components = nx.number_connected_components(graph)
    has_weight = len(ew) > 0

    def modularity(membership: np.ndarray) -> float:
        if not has_weight:
            return float("nan")
        return float(nx.community.modularity(graph, _partition(membership), weight="weight"))

    groups = {}
    modularity_by_attribute = {}
    for name in attribute_names:
        codes, _ = pd.factorize(table[name].astype(object).where(table[name].notna(), _MISSING))
        groups[name] = codes
        modularity_by_attribute[name] = modularity(codes)

    communities, community_modularity = {}, {}
    ig_graph = None
    if has_weight and ({"infomap", "walktrap"} & set(methods)):
        import igraph

        ig_graph = igraph.Graph(n=n_camp, edges=list(zip(ea.tolist(), eb.tolist())))
        ig_graph.es["weight"] = ew.astype(float).tolist()
    for method in methods:
        if has_weight:
            membership = _relabel(_detect(method, graph, ig_graph, n_camp, seed))
        else:  # no shared customers at all: every campaign is its own island
            membership = np.arange(n_camp, dtype=np.int64)
        communities[method] = pd.Series(
            membership, index=pd.Index(camp_index, name="campaign_id"), name=method
        )
        community_modularity[method] = modularity(membership)

    agreement = _agreement(communities, groups)

    campaign_frame = pd.DataFrame(
        {
            "campaign_id": camp_index.to_numpy(),
            "customers": reach,
            "degree": (shared > 0).sum(axis=1),
            "shared_customers": shared.sum(axis=1),
            "share_in_other_campaigns": in_other / np.maximum(reach, 1),
        }
    )
    for name in attribute_names:
        campaign_frame[name] = table[name].to_numpy()
    edges = pd.DataFrame(
        {
            "campaign_a": camp_index.take(ea).to_numpy(),
            "campaign_b": camp_index.take(eb).to_numpy(),
            "shared_customers": ew,
        }
    )
    return OverlapResult(
        n_campaigns=int(n_camp),
        n_customers=int(n_cust),
        n_rows=int(len(cust_codes)),
        n_edges=int(len(ew)),
        density=float(density),
        mean_jaccard=mean_jaccard,
        n_components=int(n_components),
        campaigns_per_customer=float(per_customer.mean()),
        share_multi_campaign=float(np.mean(per_customer >= 2)),
        campaigns=campaign_frame,
        edges=edges,
        modularity_by_attribute=modularity_by_attribute,
        communities=communities,
        community_modularity=community_modularity,
        agreement=agreement,
        attribute_names=attribute_names,
        methods=methods,
        random_state=seed,
    )


def _agreement(communities: dict, groups: dict) -> pd.DataFrame:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rows = []
    for method, labels in communities.items():
        lab = labels.to_numpy()
        for name, codes in groups.items():
            rows.append(
                (
                    method,
                    name,
                    int(len(np.unique(lab))),
                    int(len(np.unique(codes))),
                    float(adjusted_rand_score(codes, lab)),
                    float(normalized_mutual_info_score(codes, lab)),
                )
            )
    return pd.DataFrame(rows, columns=_AGREEMENT_COLUMNS)
