"""The posterior TOC band stored for the report."""

import numpy as np

from manylift.pooled.holdout import validate_holdout
from manylift.pooled.model import PooledModel
from manylift.simulate.program import simulate_program


def test_toc_band_ends_at_zero_and_brackets_the_mean():
    data, _ = simulate_program(300, 5, 30, random_state=2)
    fit = PooledModel(n_chains=1, n_warmup=20, n_draws=20, backend="numpy",
                      progress=False).fit(data)
    band = validate_holdout(fit).toc_band()
    assert band["q"][-1] == 1.0
    assert abs(band["mean"][-1]) < 1e-9  # TOC(1) = 0 exactly, draw by draw
    assert np.all(np.array(band["lo"]) <= np.array(band["mean"]) + 1e-12)
    assert np.all(np.array(band["mean"]) <= np.array(band["hi"]) + 1e-12)
    assert "toc_curve" in fit.results()["validation"]
