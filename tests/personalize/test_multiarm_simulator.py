"""The multi-arm simulator (manylift.simulate.multiarm) returns its truth."""

import numpy as np
import pytest

from manylift._core.errors import ModelError
from manylift.simulate.multiarm import simulate_multiarm


@pytest.mark.parametrize("rho", [0.6, -0.3])
def test_potential_outcomes_have_the_requested_moments(rho):
    exp = simulate_multiarm(n=40_000, n_arms=3, sigma=2.0, rho=rho, s=0.4, sigma_eps=1.0, random_state=4)
    h = exp.potential_outcomes - exp.potential_outcomes.mean(axis=0)
    assert np.allclose(h.std(axis=0), 2.0, rtol=0.03)
    c = np.corrcoef(h.T)[np.triu_indices(3, 1)]
    assert np.allclose(c, rho, atol=0.03)
    means = np.array(list(exp.truth["arm_means"].values()))
    assert means.std(ddof=1) == pytest.approx(0.4)
    assert exp.truth["best_arm"] == exp.arms[int(np.argmax(means))]
    resid = exp.data["outcome"].to_numpy() - exp.potential_outcomes[
        np.arange(len(exp.data)), exp.data["arm"].map({a: k for k, a in enumerate(exp.arms)}).to_numpy()]
    assert resid.std() == pytest.approx(1.0, rel=0.03)
    shares = exp.data["arm"].value_counts(normalize=True)
    assert np.allclose(shares.to_numpy(), 1 / 3, atol=0.02)


def test_simulator_is_deterministic_and_validates():
    a = simulate_multiarm(n=500, random_state=1).data
    b = simulate_multiarm(n=500, random_state=1).data
    assert a.equals(b)
    with pytest.raises(ModelError, match="'rho' parameter of simulate_multiarm"):
        simulate_multiarm(n=100, n_arms=3, rho=-0.6)
