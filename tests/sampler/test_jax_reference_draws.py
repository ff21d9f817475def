"""The JAX sweep written once (local sums -> reduction -> small blocks) draws what the
one-device JaxBackend drew before it (recorded by ``make_jax_reference.py`` at commit
4dac5b9): same seed, same design, same random numbers, so the same chains up to
floating-point rounding; and a one-device mesh (``ShardedJaxBackend`` with one logical
shard, the reduction a psum) draws the same again."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("make_jax_reference", HERE / "make_jax_reference.py")
ref_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref_mod)

KEYS = ("theta0", "sigma20", "u0", "loglik", "theta", "sigma2", "omega_inv", "u")


@pytest.fixture(scope="module")
def recorded():
    with np.load(HERE / "data" / "jax_reference.npz") as z:
        return {k: z[k] for k in z.files}


def _design(recorded, ri: bool):
    prefix = f"design{int(ri)}_"
    return ref_mod.design_from_arrays({k[len(prefix):]: v for k, v in recorded.items()
                                       if k.startswith(prefix)})


def _close(new, old, rtol):
    """Agreement relative to each quantity's spread over the recorded sweeps and chains."""
    scale = np.std(old) + np.abs(old).mean() + 1e-300
    return float(np.max(np.abs(new - old)) / scale) < rtol


@pytest.mark.parametrize("case", [
    "default", "plain_gibbs",
    pytest.param("float32", marks=pytest.mark.slow),
    pytest.param("no_intercept", marks=pytest.mark.slow)])
def test_same_draws_as_the_recorded_one_device_backend(recorded, case):
    opts, dtype, ri = ref_mod.CASES[case]
    new = ref_mod.draws(_design(recorded, ri), opts, dtype)
    # With jax 0.10.2 on CPU the draws are bit-identical (the log-likelihood, now built
    # from the reduced sums, to 1e-14).  The tolerance leaves room for another XLA's
    # rounding; a changed random number or block is O(1) away (checked below).
    rtol = 1e-12 if dtype == "float64" else 1e-6
    for k in KEYS:
        old = recorded[f"{case}_{k}"]
        assert new[k].shape == old.shape, (k, new[k].shape, old.shape)
        assert _close(new[k], old, rtol), (case, k, np.max(np.abs(new[k] - old)))


def test_the_comparison_can_fail(recorded):
    """Another seed, or one block changed, is far outside the tolerance."""
    from manylift.sampler.gibbs_jax import JaxBackend
    from manylift.sampler.state import ModelSpec

    d = _design(recorded, True)
    b = JaxBackend(d, ModelSpec(), ref_mod.N_CHAINS)
    b.init(np.random.SeedSequence(2025).spawn(ref_mod.N_CHAINS))
    out = np.concatenate([b.run(n)["sigma2"] for n in ref_mod.CALLS])
    assert not _close(out, recorded["default_sigma2"], 1e-2)
    # the same seed without the two moves (other blocks): far apart too
    for k in ("theta", "sigma2", "u"):
        assert not _close(recorded["plain_gibbs_" + k], recorded["default_" + k], 1e-2)


def test_one_device_mesh_is_the_one_device_backend(recorded):
    """ShardedJaxBackend on a one-device mesh with one logical shard: the sweep inside
    shard_map with psum, the same draws as JaxBackend (to rounding)."""
    from manylift.sampler import sharding as SH
    from manylift.sampler.state import ModelSpec

    d = _design(recorded, True)
    b = SH.ShardedJaxBackend(d, ModelSpec(), ref_mod.N_CHAINS, mesh=SH.make_mesh(1), n_shards=1)
    b.init(np.random.SeedSequence(2024).spawn(ref_mod.N_CHAINS))
    runs = [b.run(n) for n in ref_mod.CALLS]
    for k in ("theta", "sigma2", "omega_inv", "loglik"):
        assert _close(np.concatenate([r[k] for r in runs]), recorded[f"default_{k}"], 1e-12), k
    u = np.stack([s.u for s in b.states()])
    assert _close(u, recorded["default_u"], 1e-12)
