import numpy as np
import pytest

from manylift._core.errors import ModelError
from manylift.simulate.single import simulate_experiment


def test_truth_is_consistent_with_the_data():
    sim = simulate_experiment(2000, n_arms=2, random_state=0)
    f = sim.frame
    w = f["treatment"].to_numpy()
    np.testing.assert_allclose(f["outcome"], sim.potential_outcomes[np.arange(2000), w])
    np.testing.assert_allclose(sim.mu[:, 1:] - sim.mu[:, [0]], sim.tau)
    np.testing.assert_allclose(sim.propensity.sum(axis=1), 1.0)
    shares = np.bincount(w) / w.size
    np.testing.assert_allclose(shares, [0.5, 0.25, 0.25], atol=0.03)
    assert repr(sim).startswith("SingleExperiment(kind='randomized'")


def test_deterministic_and_confounded_shift():
    a = simulate_experiment(500, kind="confounded", random_state=3)
    b = simulate_experiment(500, kind="confounded", random_state=3)
    np.testing.assert_array_equal(a.frame.to_numpy(), b.frame.to_numpy())
    big = simulate_experiment(20000, kind="confounded", random_state=1)
    x0 = big.frame["x0"].to_numpy()
    w = big.frame["treatment"].to_numpy()
    assert x0[w == 1].mean() - x0[w == 0].mean() > 0.8


def test_binary_outcome_and_errors():
    sim = simulate_experiment(1000, binary_outcome=True, random_state=2)
    assert set(np.unique(sim.frame["outcome"])) <= {0.0, 1.0}
    assert np.all((sim.mu >= 0) & (sim.mu <= 1))
    with pytest.raises(ModelError, match="kind"):
        simulate_experiment(100, kind="observational")
    with pytest.raises(ModelError, match="one value per arm"):
        simulate_experiment(100, n_arms=2, ate=[1, 2, 3])
