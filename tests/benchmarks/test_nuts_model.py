"""The NumPyro model of benchmarks/bench_nuts.py is the Gibbs sampler's model.

Its log joint density at a random point equals one computed independently:
scipy's normal, gamma and Wishart densities for the priors of docs/pooled.md
(``ModelSpec`` defaults), the fixed part from the numpy reference
``Design.F_dot`` (not the model's own gathers), and the change of variables of
the non-centred parameterisation written out by hand.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("numpyro")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_nuts.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_nuts", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _design():
    from manylift.pooled.build import build_inputs
    from manylift.simulate.program import simulate_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(60, 6, 10, mode="model", random_state=3)
        return build_inputs(data).design


def test_numpyro_log_density_equals_gibbs_model(rng):
    from manylift.sampler.gibbs_jax import enable_x64

    enable_x64()
    import jax.numpy as jnp
    from numpyro.infer.util import log_density

    from manylift.sampler.gibbs_numpy import random_part

    bench = _bench()
    design = _design()
    K, q, n = design.K, design.q, design.n_customers
    theta = rng.normal(0, 0.5, K)
    precision = 0.3
    chol = np.tril(rng.normal(0, 0.3, (q, q)), -1) + np.diag(rng.uniform(0.5, 1.5, q))
    z = rng.standard_normal((n, q))

    model = bench.make_numpyro_model(design)
    params = {"theta": jnp.asarray(theta), "precision": jnp.asarray(precision),
              "omega_inv_chol": jnp.asarray(chol), "z": jnp.asarray(z)}
    got, trace = log_density(model, (bench.numpyro_arrays(design),), {}, params)

    # the same model, written independently in the Gibbs sampler's variables
    omega_inv = chol @ chol.T
    omega = np.linalg.inv(omega_inv)
    u = np.linalg.solve(chol.T, z.T).T  # u_i = L^-T z_i
    sigma = 1 / np.sqrt(precision)
    mean = design.F_dot(theta) + random_part(design, u)
    expected = (
        stats.norm.logpdf(design.y, mean, sigma).sum()
        + stats.norm.logpdf(theta, 0, np.sqrt(1000)).sum()  # theta ~ N(0, 1000 I)
        + stats.gamma.logpdf(precision, a=0.1, scale=10)  # 1/sigma^2 ~ Gamma(0.1, scale 10)
        + stats.wishart.logpdf(omega_inv, df=q + 2, scale=np.eye(q))  # Omega^-1 ~ W(q+2, I)
        + stats.multivariate_normal.logpdf(u, np.zeros(q), omega).sum()  # u_i ~ N(0, Omega)
    )
    # change of variables: Omega^-1 = L L' (Jacobian 2^q prod_k L_kk^(q-k+1), k = 1..q)
    # and u_i = L^-T z_i (|det| = prod_k L_kk^-1 per customer)
    diag = np.diag(chol)
    expected += q * np.log(2) + np.sum((q - np.arange(q)) * np.log(diag))
    expected -= n * np.sum(np.log(diag))
    np.testing.assert_allclose(float(got), expected, rtol=1e-10)
    # the reported quantities are the Gibbs sampler's taubar, sigma and sigma_u
    assert float(trace["taubar"]["value"]) == theta[design.names.index("taubar")]
    np.testing.assert_allclose(float(trace["sigma"]["value"]), sigma, rtol=1e-12)
    np.testing.assert_allclose(float(trace["sigma_u"]["value"]), np.sqrt(omega[0, 0]),
                               rtol=1e-10)
