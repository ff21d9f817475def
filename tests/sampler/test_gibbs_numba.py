"""The fused numba sweep samples the same posterior as the numpy reference."""

import numpy as np
import pytest

from manylift.pooled.model import PooledModel
from manylift.simulate.program import ProgramSpec, simulate_program

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def data():
    d, _ = simulate_program(600, 6, 16, spec=ProgramSpec(sigma=3.0), random_state=4)
    return d


def _fit(data, backend, seed):
    # no holdout: random_state also draws the holdout split, which would change the data
    return PooledModel(n_chains=2, n_warmup=200, n_draws=800, backend=backend, progress=False,
                       random_state=seed, holdout=False).fit(data)


@pytest.mark.slow
def test_numba_and_numpy_agree_in_distribution(data):
    import arviz as az

    a, b = _fit(data, "numba", 1), _fit(data, "numpy", 2)
    for name in ("average_effect", "taubar", "sigma", "sigma_u"):
        xa = a.posterior.posterior[name].values
        xb = b.posterior.posterior[name].values
        se = np.hypot(xa.std() / np.sqrt(az.ess(xa)), xb.std() / np.sqrt(az.ess(xb)))
        assert abs(xa.mean() - xb.mean()) < 4.5 * se, name
        assert 0.75 < xa.std() / xb.std() < 1.33, name


def test_numba_runs_are_deterministic_and_resume_exactly(data, tmp_path):
    kw = dict(n_chains=2, n_warmup=20, n_draws=10, backend="numba", progress=False,
              checkpoint_every=15, random_state=3)
    full = PooledModel(**kw).fit(data)
    again = PooledModel(**kw).fit(data)
    np.testing.assert_array_equal(full.run.theta, again.run.theta)
    ck = tmp_path / "ck.npz"
    PooledModel(**kw).fit(data, checkpoint=ck, stop_after=15)
    resumed = PooledModel(**kw).fit(data, checkpoint=ck, resume=True)
    np.testing.assert_array_equal(full.run.theta, resumed.run.theta)
    np.testing.assert_array_equal(full.customers["mean"], resumed.customers["mean"])
