"""decompose(fit) on a tiny fit: shapes, and a fit without holdout rows."""

import json

import numpy as np

from manylift.decomposition import decompose, results_section
from manylift.pooled.model import PooledModel
from manylift.simulate.program import simulate_program


def _fit(holdout):
    data, _ = simulate_program(300, 5, 12, random_state=0)
    return PooledModel(n_chains=1, n_warmup=20, n_draws=20, backend="numpy", progress=False,
                       holdout=holdout).fit(data)


def test_without_holdout_the_holdout_parts_are_none():
    fit = _fit(False)
    d = decompose(fit)
    assert d.shares is None and d.shapley_ipw is None and d.shapley_autoc is None
    assert "6 rows" in d.holdout_problem
    r = results_section(fit)
    json.dumps(r)
    assert r["sd_share"] is None and r["variance_share"] is None and r["shapley_ipw"] is None
    assert "6 rows" in r["holdout_problem"]
    # curves need no holdout: one value per draw and level
    assert d.fatigue_stock.draws.shape == (20, fit.inputs.features.n_stock_bins)
    assert np.isfinite(d.weeks.extra["trend"]).all()


def test_tiny_fit_with_holdout_is_json_ready():
    fit = _fit(True)
    r = results_section(fit)
    json.dumps(r)
    for key in ("sd_share", "variance_share"):
        shares = [r[key][k]["mean"] for k in ("unobserved", "observed", "week", "campaign")]
        assert abs(sum(shares) - 1) < 1e-9
