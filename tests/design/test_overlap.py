"""Tests of the campaign overlap network (manylift.design.overlap).

Truth comes from hand-made examples, closed-form modularity values, an
independent projection (networkx.bipartite), planted community structure and
the program simulator, whose eligibility rules ignore campaign attributes.
"""

import json
import time
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from manylift._core.errors import ColumnError, DataError, DataWarning, ModelError
from manylift.design import OVERLAP_METHODS, OverlapResult, overlap_network

# -- a tiny hand-made example -------------------------------------------------
# u1: A, B      u2: A, B, C (A twice: two weeks)      u3: C      u4: A      u5: D
TINY_CUSTOMERS = ["u1", "u1", "u2", "u2", "u2", "u2", "u3", "u4", "u5"]
TINY_CAMPAIGNS = ["A", "B", "A", "A", "B", "C", "C", "A", "D"]


def test_tiny_example_edges_density_and_reach_by_hand():
    r = overlap_network(TINY_CUSTOMERS, TINY_CAMPAIGNS)
    # shared customers: A-B {u1, u2} = 2, A-C {u2} = 1, B-C {u2} = 1; D shares none.
    edges = {(a, b): w for a, b, w in r.edges.itertuples(index=False)}
    assert edges == {("A", "B"): 2, ("A", "C"): 1, ("B", "C"): 1}
    assert r.n_campaigns == 4 and r.n_customers == 5 and r.n_rows == 9
    assert r.n_edges == 3
    assert r.density == pytest.approx(3 / 6)
    assert r.n_components == 2  # {A, B, C} and {D}
    camp = r.campaigns.set_index("campaign_id")
    assert camp["customers"].to_dict() == {"A": 3, "B": 2, "C": 2, "D": 1}
    assert camp["degree"].to_dict() == {"A": 2, "B": 2, "C": 2, "D": 0}
    assert camp["shared_customers"].to_dict() == {"A": 3, "B": 3, "C": 2, "D": 0}
    # customers also in another campaign: A {u1, u2} of 3, B 2 of 2, C {u2} of 2, D 0 of 1
    assert camp["share_in_other_campaigns"].to_dict() == pytest.approx(
        {"A": 2 / 3, "B": 1.0, "C": 0.5, "D": 0.0})
    # distinct campaigns per customer: 2, 3, 1, 1, 1
    assert r.campaigns_per_customer == pytest.approx(8 / 5)
    assert r.share_multi_campaign == pytest.approx(2 / 5)
    # Jaccard: AB 2/3, AC 1/4, AD 0, BC 1/3, BD 0, CD 0
    assert r.mean_jaccard == pytest.approx((2 / 3 + 1 / 4 + 1 / 3) / 6)


def test_projection_agrees_with_networkx_bipartite(rng):
    customers = rng.integers(0, 300, 2000)
    campaigns = rng.integers(0, 12, 2000)
    r = overlap_network(customers, campaigns, methods=())
    b = nx.Graph()
    b.add_nodes_from((("k", c) for c in np.unique(campaigns)), bipartite=0)
    b.add_edges_from((("k", k), ("u", u)) for u, k in zip(customers, campaigns))
    proj = nx.bipartite.weighted_projected_graph(b, [("k", c) for c in np.unique(campaigns)])
    expected = {(a[1], c[1]) if a[1] < c[1] else (c[1], a[1]): d["weight"]
                for a, c, d in proj.edges(data=True)}
    got = {(a, b_): w for a, b_, w in r.edges.itertuples(index=False)}
    assert got == expected
    assert r.density == pytest.approx(nx.density(proj))


def test_modularity_of_tiny_triangle_by_hand():
    # Triangle A-B (2), A-C (1), B-C (1); partition {A, B} | {C}.
    # m = 4, strengths 3, 3, 2: Q = (2/4 - (6/8)^2) + (0 - (2/8)^2) = -0.125.
    attributes = pd.DataFrame({"campaign_id": ["A", "B", "C"], "goal": ["x", "x", "y"]})
    r = overlap_network(["u1", "u1", "u2", "u2", "u2"], ["A", "B", "A", "B", "C"], attributes)
    assert r.modularity_by_attribute["goal"] == pytest.approx(-0.125)


def test_modularity_of_complete_equal_weight_graph_matches_closed_form():
    # Every pair of n campaigns shares exactly one customer (and nobody else):
    # W = J - I, and for groups with shares p_g, Q = -(1 - sum p_g^2) / (n - 1).
    n = 12
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    customers = np.repeat(np.arange(len(pairs)), 2)
    campaigns = np.array(pairs).ravel()
    goal = np.array(["a"] * 6 + ["b"] * 4 + ["c"] * 2)
    attributes = pd.DataFrame({"goal": goal}, index=pd.Index(np.arange(n), name="campaign_id"))
    r = overlap_network(customers, campaigns, attributes, methods=())
    p = np.array([6, 4, 2]) / n
    assert r.density == 1.0
    assert r.modularity_by_attribute["goal"] == pytest.approx(-(1 - np.sum(p**2)) / (n - 1))


# -- planted communities and random assignment ----------------------------------
def _planted(rng, n_campaigns=20, n_customers=3000, per_customer=4, crossover=0.05):
    """Customers each belong to one of two campaign groups; a few cross over once."""
    group = np.repeat([0, 1], n_campaigns // 2)
    own_group = rng.integers(0, 2, n_customers)
    cust, camp = [], []
    for i in range(n_customers):
        own = np.flatnonzero(group == own_group[i])
        chosen = rng.choice(own, size=per_customer, replace=False)
        cust += [i] * per_customer
        camp += chosen.tolist()
        if rng.random() < crossover:
            cust.append(i)
            camp.append(int(rng.choice(np.flatnonzero(group != own_group[i]))))
    attributes = pd.DataFrame({
        "campaign_id": [f"K{c:02d}" for c in range(n_campaigns)],
        "goal": np.where(group == 0, "acquire", "retain"),
        "reward": rng.choice(["credit", "promo", "bonus"], n_campaigns),  # unrelated
    })
    return np.array(cust), np.array([f"K{c:02d}" for c in camp]), attributes, group


def test_planted_two_communities_have_high_modularity_and_are_recovered(rng):
    cust, camp, attributes, group = _planted(rng)
    r = overlap_network(cust, camp, attributes, random_state=0)
    # Two equal groups with little cross-over: Q close to its maximum of 1/2.
    assert r.modularity_by_attribute["goal"] > 0.4
    assert abs(r.modularity_by_attribute["reward"]) < 0.1
    agree = r.agreement.set_index(["method", "attribute"])
    for method in OVERLAP_METHODS:
        assert r.communities[method].nunique() == 2, method
        assert agree.loc[(method, "goal"), "adjusted_rand"] == pytest.approx(1.0), method
        assert agree.loc[(method, "goal"), "normalized_mutual_info"] == pytest.approx(1.0)
        assert agree.loc[(method, "reward"), "adjusted_rand"] < 0.3
        assert r.community_modularity[method] == pytest.approx(
            r.modularity_by_attribute["goal"])
    # the labels are per campaign, indexed by campaign id
    labels = r.communities["louvain"]
    assert list(labels.index) == list(attributes["campaign_id"])
    assert labels.groupby(attributes["goal"].to_numpy()).nunique().tolist() == [1, 1]


def test_random_assignment_gives_attribute_modularity_near_zero(rng):
    n_campaigns, n_customers = 40, 20000
    customers = np.repeat(np.arange(n_customers), 5)
    campaigns = rng.integers(0, n_campaigns, customers.size)
    goal = rng.choice(["a", "b", "c"], n_campaigns)
    attributes = pd.DataFrame({"campaign_id": np.arange(n_campaigns), "goal": goal})
    r = overlap_network(customers, campaigns, attributes, random_state=0)
    p = pd.Series(goal).value_counts(normalize=True).to_numpy()
    null = -(1 - np.sum(p**2)) / (n_campaigns - 1)  # no-structure level (no self-loops)
    assert abs(r.modularity_by_attribute["goal"]) < 0.03
    assert r.modularity_by_attribute["goal"] == pytest.approx(null, abs=0.01)
    assert r.density == 1.0 and r.n_components == 1
    assert (r.agreement["adjusted_rand"] < 0.1).all()


def test_simulated_program_attribute_modularity_is_near_zero():
    # simulate_program's eligibility rules ignore campaign attributes by design.
    from manylift.simulate.program import simulate_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # tiny sizes drop a few interventions
        data, _ = simulate_program(1500, 20, 20, random_state=3)
    frame = data.frame
    r = overlap_network(frame["customer_id"], frame["campaign_id"], data.campaigns,
                        random_state=0)
    assert set(r.attribute_names) == {"goal", "action", "reward"}  # float cost skipped
    assert r.n_components == 1 and r.density > 0.9
    for attribute, q in r.modularity_by_attribute.items():
        assert abs(q) < 0.08, (attribute, q)
    assert (r.agreement["adjusted_rand"] < 0.2).all()


# -- edge cases, determinism, serialisation ------------------------------------
def test_no_shared_customers_gives_islands_and_undefined_modularity():
    attributes = pd.DataFrame({"campaign_id": ["A", "B", "C"], "goal": ["x", "x", "y"]})
    r = overlap_network([1, 2, 3, 3], ["A", "B", "C", "C"], attributes)
    assert r.n_edges == 0 and r.density == 0.0 and r.n_components == 3
    assert np.isnan(r.modularity_by_attribute["goal"])
    for method in OVERLAP_METHODS:
        assert r.communities[method].nunique() == 3


def test_same_seed_same_communities_and_json_round_trip(rng):
    cust, camp, attributes, _ = _planted(rng, n_customers=800, crossover=0.3)
    a = overlap_network(cust, camp, attributes, random_state=7)
    b = overlap_network(cust, camp, attributes, random_state=7)
    for method in OVERLAP_METHODS:
        pd.testing.assert_series_equal(a.communities[method], b.communities[method])
    d = json.loads(json.dumps(a.to_dict()))
    back = OverlapResult.from_dict(d)
    assert back.to_dict() == a.to_dict()
    pd.testing.assert_frame_equal(back.edges, a.edges)
    assert "modularity by goal" in repr(a)
    frame = a.to_frame()
    assert list(frame.columns[:4]) == ["campaign_id", "customers", "degree", "shared_customers"]
    assert {f"community_{m}" for m in OVERLAP_METHODS} <= set(frame.columns)


def test_campaign_table_forms_categorical_ids_and_missing_values():
    cust = [1, 1, 2, 2, 3, 3]
    camp = pd.Series(pd.Categorical(["A", "B", "A", "C", "B", "C"],
                                    categories=["A", "B", "C", "Z"]))
    # indexed by campaign id, an extra campaign Z unused, a missing value
    table = pd.DataFrame({"goal": ["x", None, "y", "w"], "cost": [0.1, 0.2, 0.3, 0.4]},
                         index=pd.Index(["A", "B", "C", "Z"]))
    r = overlap_network(cust, camp, table, methods=("louvain",))
    assert r.attribute_names == ("goal",)
    assert list(r.campaigns["campaign_id"]) == ["A", "B", "C"]
    assert r.campaigns["goal"].isna().sum() == 1
    # ids read as numbers in one file and strings in another still match
    table2 = pd.DataFrame({"campaign_id": ["1", "2"], "goal": ["x", "y"]})
    r2 = overlap_network([1, 1], [1, 2], table2, methods=())
    assert list(r2.campaigns["goal"]) == ["x", "y"]


def test_bad_input_gives_clear_errors():
    with pytest.raises(DataError, match=r"'customer_ids' has 3 values but 'campaign_ids' has 2"):
        overlap_network([1, 2, 3], ["A", "B"])
    with pytest.raises(DataError, match="No exposure rows"):
        overlap_network([], [])
    with pytest.raises(DataError, match=r"'campaign_ids' has 1 missing value.*position\(s\) 1"):
        overlap_network([1, 2], ["A", None])
    with pytest.raises(DataError, match="one-dimensional"):
        overlap_network(np.zeros((2, 2)), np.zeros((2, 2)))
    table = pd.DataFrame({"campaign_id": ["A"], "goal": ["x"]})
    with pytest.raises(ColumnError, match=r"1 of 2 campaign id\(s\).*'B'"):
        overlap_network([1, 1], ["A", "B"], table)
    dup = pd.DataFrame({"campaign_id": ["A", "A", "B"], "goal": ["x", "y", "z"]})
    with pytest.raises(DataError, match=r"more than once \('A'\)"):
        overlap_network([1, 1], ["A", "B"], dup)
    with pytest.raises(ColumnError, match=r"\['reward'\] are not in the campaign table"):
        overlap_network([1, 1], ["A", "B"], pd.DataFrame(
            {"campaign_id": ["A", "B"], "goal": ["x", "y"]}), attribute_cols=["reward"])
    with pytest.raises(DataError, match="pandas DataFrame"):
        overlap_network([1, 1], ["A", "B"], {"A": "x"})
    with pytest.raises(ModelError, match="'methods' parameter"):
        overlap_network([1, 1], ["A", "B"], methods=("girvan_newman",))


@pytest.mark.slow
def test_paper_scale_projection_takes_seconds():
    # 16 million rows, 584,000 customers, 140 campaigns (the source study's size).
    rng = np.random.default_rng(0)
    n_rows = 16_000_000
    customers = rng.integers(0, 584_000, n_rows)
    campaigns = rng.integers(0, 140, n_rows).astype(np.int16)
    start = time.perf_counter()
    r = overlap_network(customers, campaigns, methods=("louvain",))
    seconds = time.perf_counter() - start
    assert r.n_campaigns == 140 and r.n_customers == 584_000 and r.n_edges == 9730
    assert seconds < 40, seconds  # about 8 s on the 2-core CI machine
