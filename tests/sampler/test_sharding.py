"""The sharded JAX sweep: customers partitioned across devices, theta's sums all-reduced.

* the plan keeps every customer whole and balances rows;
* the scale move from statistics summed over customer blocks equals the numpy
  reference's move on all customers;
* on 4 (forced) CPU devices, in a subprocess because the device count must be
  set before JAX starts: the sharded run uses the same random numbers as the
  one-device run (trajectories agree to rounding), every device holds the same
  theta, sigma^2 and Omega^-1, the log-likelihood built
  from the all-reduced sums equals a direct computation on the gathered state,
  checkpoint/resume through get_rng/set_states (and through run_sampler) is
  exact, and the posterior
  (taubar, sigma, sigma_u) agrees with the numpy reference sampler within
  Monte Carlo error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("jax")

from manylift._core.errors import SamplerError  # noqa: E402
from manylift.sampler import sharding as SH  # noqa: E402
from manylift.sampler.state import ModelSpec  # noqa: E402


def _design(n_customers, n_campaigns, n_weeks, rows_per_customer, seed):
    from manylift.pooled.build import build_inputs
    from manylift.simulate.program import simulate_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(n_customers, n_campaigns, n_weeks,
                                   rows_per_customer=rows_per_customer, mode="model", random_state=seed)
        return build_inputs(data, holdout=False).design


@pytest.fixture(scope="module")
def tiny():
    return _design(120, 5, 10, 6, seed=11)


def test_plan_keeps_customers_whole_and_balances_rows(rng):
    counts = rng.integers(1, 40, size=1000)
    customer = np.repeat(np.arange(1000), counts)
    plan = SH.plan_shards(customer, 1000, 7)
    assert plan.customer_start[0] == 0 and plan.customer_start[-1] == 1000
    assert np.all(np.diff(plan.customer_start) >= 1)
    # each shard's rows are exactly its customers' rows
    cum = np.concatenate([[0], np.cumsum(counts)])
    np.testing.assert_array_equal(plan.row_start, cum[plan.customer_start])
    rows = np.diff(plan.row_start)
    assert rows.sum() == customer.size
    # balanced to within one customer's rows of N / S
    assert np.all(np.abs(rows - customer.size / 7) <= counts.max())
    assert plan.rows_per_shard == rows.max() and plan.padding < 0.05
    frame = plan.to_frame()
    assert list(frame["rows"]) == list(rows) and "padding" in repr(plan)


def test_plan_edge_cases():
    # one customer with most rows: shards stay non-empty and ordered
    customer = np.repeat(np.arange(5), [100, 1, 1, 1, 1])
    plan = SH.plan_shards(customer, 5, 4)
    assert list(np.diff(plan.customer_start)) == [1, 1, 1, 2]
    with pytest.raises(SamplerError, match="n_shards"):
        SH.plan_shards(customer, 5, 6)
    with pytest.raises(SamplerError, match="sorted"):
        SH.plan_shards(customer[::-1], 5, 2)


def test_sharded_design_layout_and_state_round_trip(tiny, rng):
    mesh = SH.make_mesh(1)
    sd = SH.to_sharded_design(tiny, mesh, n_shards=3)
    plan = sd.plan
    S, Nl = 3, plan.rows_per_shard
    assert np.asarray(sd.y).shape == (S, Nl)
    mask = np.asarray(sd.mask)
    assert mask.sum() == tiny.n_rows
    # real rows in order, padded rows zero
    y = np.asarray(sd.y)
    np.testing.assert_array_equal(np.concatenate([y[s][mask[s] > 0] for s in range(S)]), tiny.y)
    assert np.all(y[mask == 0] == 0) and np.all(np.asarray(sd.R)[:, :, :][
        np.broadcast_to(mask[:, None] == 0, np.asarray(sd.R).shape)] == 0)
    # local customer index + shard start = global customer index
    cust = np.asarray(sd.customer)
    glob = np.concatenate([cust[s][mask[s] > 0] + plan.customer_start[s] for s in range(S)])
    np.testing.assert_array_equal(glob, tiny.customer)
    u = rng.normal(size=(tiny.n_customers, tiny.q))
    np.testing.assert_array_equal(SH._unpad_customers(SH._pad_customers(u, plan), plan), u)
    with pytest.raises(SamplerError, match="multiple"):
        SH.to_sharded_design(tiny, mesh, n_shards=0)
    with pytest.raises(SamplerError, match="n_devices"):
        SH.make_mesh(10_000)


def test_scale_move_from_sums_of_shards_equals_numpy_reference(tiny, rng, fixed_rng):
    """The move from sums added over customer blocks (what a psum gives) draws what the
    numpy reference draws from all customers at once, with the same random numbers."""
    import jax
    import jax.numpy as jnp
    from scipy.stats import norm

    from manylift.sampler import gibbs_jax as GJ
    from manylift.sampler import gibbs_numpy as GN

    GJ.enable_x64()
    spec = ModelSpec()
    q, n = tiny.q, tiny.n_customers
    f_sums = jax.jit(SH.px_scale_from_sums, static_argnames=("spec",))
    n_accept = 0
    for _ in range(10):
        u = rng.normal(size=(n, q)) * rng.uniform(0.3, 3.0)
        m = rng.normal(size=(n, q))
        W = rng.normal(size=(q, q))
        omega_inv = W @ W.T + np.eye(q)
        sigma2 = rng.uniform(0.5, 2.0)
        z = rng.normal(size=q + 1)
        cuts = np.sort(rng.choice(np.arange(1, n), 3, replace=False))
        A = sum(np.einsum("ni,nj,nij->ij", uu, uu, rr) for uu, rr in
                zip(np.split(u, cuts), np.split(tiny.RtR, cuts), strict=True)) / sigma2
        b = sum(np.einsum("ni,ni->i", uu, mm) for uu, mm in
                zip(np.split(u, cuts), np.split(m, cuts), strict=True))
        alpha, oi_a, acc_a = f_sums(jnp.asarray(z), jnp.asarray(A), jnp.asarray(b),
                                    jnp.asarray(omega_inv), spec)
        u_b, oi_b, acc_b = GN.px_scale_step(fixed_rng(z[:-1], norm.cdf(z[-1])), u, omega_inv,
                                            tiny.RtR, m, sigma2, spec)
        assert bool(acc_a) == bool(acc_b)
        n_accept += bool(acc_a)
        np.testing.assert_allclose(u * np.asarray(alpha), u_b, rtol=1e-9)
        np.testing.assert_allclose(np.asarray(oi_a), oi_b, rtol=1e-9)
    assert n_accept > 0


# -- four forced CPU devices, in a subprocess ------------------------------------
_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    import jax
    from manylift.pooled.build import build_inputs
    from manylift.sampler import sharding as SH
    from manylift.sampler.backends import NumpyBackend
    from manylift.sampler.state import ModelSpec
    from manylift.simulate.program import simulate_program

    assert len(jax.devices()) == 4, jax.devices()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(120, 5, 10, rows_per_customer=6, mode="model",
                                   random_state=11)
        design = build_inputs(data, holdout=False).design
    spec, C, L = ModelSpec(), 2, 8
    seeds = lambda s: np.random.SeedSequence(s).spawn(C)
    keys = ("loglik", "theta", "sigma2", "omega_inv")

    def traj(backend, n_calls):
        outs = [backend.run(L) for _ in range(n_calls)]
        return {k: np.concatenate([o[k] for o in outs]) for k in keys}

    res = {}
    b4 = SH.ShardedJaxBackend(design, spec, C, mesh=SH.make_mesh(4), n_shards=4)
    b1 = SH.ShardedJaxBackend(design, spec, C, mesh=SH.make_mesh(1), n_shards=4)
    b4.init(seeds(0)); b1.init(seeds(0))
    t4, t1 = traj(b4, 2), traj(b1, 2)
    res["devices"] = [int(b4.mesh.devices.size), int(b1.mesh.devices.size)]
    # rounding-level agreement, scaled by each quantity's spread over the sweeps
    res["max_scaled_diff"] = {k: float(np.max(np.abs(t4[k] - t1[k])) / (np.std(t1[k]) + 1e-300))
                              for k in keys}
    u4 = np.stack([s.u for s in b4.states()]); u1 = np.stack([s.u for s in b1.states()])
    res["u_scaled_diff"] = float(np.max(np.abs(u4 - u1)) / np.std(u1))
    res["u_shape"] = list(u4.shape)
    # the replicated blocks are the same on every device (each device's own buffer)
    res["replicas_equal"] = all(
        len(x.addressable_shards) == 4
        and all(np.array_equal(np.asarray(sh.data), np.asarray(x.addressable_shards[0].data))
                for sh in x.addressable_shards)
        for x in (b4._states.theta, b4._states.sigma2, b4._states.omega_inv))
    # the log-likelihood the sharded sweep assembles from its summed statistics equals
    # the one computed directly from the gathered state and the unsharded design
    direct = []
    for st in b4.states():
        r = design.y - design.F_dot(st.theta) - np.einsum("nq,nq->n", design.R, st.u[design.customer])
        direct.append(-0.5 * design.n_rows * np.log(2 * np.pi * st.sigma2)
                      - 0.5 * (r @ r) / st.sigma2)
    res["loglik_rel_diff"] = float(np.max(np.abs(np.array(direct) - t4["loglik"][-1])
                                          / np.abs(direct)))
    # another seed gives other draws (the comparison above is not vacuous)
    b1.init(seeds(1))
    res["other_seed_scaled_diff"] = float(np.max(np.abs(traj(b1, 2)["sigma2"] - t4["sigma2"]))
                                          / np.std(t4["sigma2"]))
    # checkpoint/resume through get_rng and set_states on the 4-device mesh
    blob, states = b4.get_rng(), b4.states()
    going_on = b4.run(L)
    c = SH.ShardedJaxBackend(design, spec, C, mesh=SH.make_mesh(4), n_shards=4)
    c.init(seeds(99)); c.set_states(states); c.set_rng(blob)
    resumed = c.run(L)
    res["resume_equal"] = all(np.array_equal(going_on[k], resumed[k]) for k in keys)
    res["n_traces"] = b4.n_traces
    # the driver: stopped after a checkpoint and resumed gives the uninterrupted draws
    from manylift.sampler.driver import SamplerSettings, run_sampler
    settings = SamplerSettings(n_chains=C, n_warmup=8, n_draws=2, thin=8, random_state=7,
                               checkpoint_every=8)
    new = lambda: SH.ShardedJaxBackend(design, spec, C, mesh=SH.make_mesh(4), n_shards=4)
    full = run_sampler(new(), settings, progress=False)
    ck = sys.argv[1] + "/ck.npz"
    run_sampler(new(), settings, checkpoint=ck, progress=False, stop_after=16)
    again = run_sampler(new(), settings, checkpoint=ck, resume=True, progress=False)
    res["driver_resume_equal"] = bool(again.resumed) and all(
        np.array_equal(getattr(full, k), getattr(again, k))
        for k in ("theta", "sigma2", "omega", "loglik"))
    # the posterior: 4 devices against the numpy reference
    warm, draws = 200, 1200
    b4.init(seeds(5))
    traj(b4, warm // L)
    post = traj(b4, draws // L)
    nb = NumpyBackend(design, spec, C)
    nb.init(seeds(6))
    nb.run(warm)
    ref = {"theta": [], "sigma2": [], "omega_inv": []}
    for _ in range(draws):
        nb.run(1)
        st = nb.states()
        ref["theta"].append([s.theta for s in st]); ref["sigma2"].append([s.sigma2 for s in st])
        ref["omega_inv"].append([s.omega_inv for s in st])
    it = design.names.index("taubar")

    def summaries(d):
        th, s2, oi = (np.asarray(d[k]).swapaxes(0, 1) for k in ("theta", "sigma2", "omega_inv"))
        om = np.linalg.inv(oi)
        return {"taubar": th[..., it], "sigma": np.sqrt(s2), "sigma_u": np.sqrt(om[..., 0, 0])}

    res["sharded"] = {k: v.tolist() for k, v in summaries(post).items()}
    res["numpy"] = {k: v.tolist() for k, v in summaries(ref).items()}
    json.dump(res, sys.stdout)
""")


@pytest.mark.slow
def test_four_devices_same_random_numbers_resume_and_posterior(tmp_path):
    import arviz as az

    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], env=env,
                          capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["devices"] == [4, 1]
    assert res["u_shape"] == [2, 120, 5]  # q = 5: intercept, W and three covariates
    # same random numbers: the two runs differ only by rounding (1e-9 of the spread),
    # while another seed differs by O(1) spreads
    for k, v in res["max_scaled_diff"].items():
        assert v < 1e-9, (k, v)
    assert res["u_scaled_diff"] < 1e-9
    assert res["loglik_rel_diff"] < 1e-10
    assert res["replicas_equal"]
    assert res["other_seed_scaled_diff"] > 0.1
    assert res["resume_equal"]
    assert res["n_traces"] == 1  # every run(8) and the resumed backend: one compilation
    assert res["driver_resume_equal"]
    for name in ("taubar", "sigma", "sigma_u"):
        a, b = np.asarray(res["sharded"][name]), np.asarray(res["numpy"][name])
        se = [x.std() / np.sqrt(float(az.ess(x))) for x in (a, b)]
        z = (a.mean() - b.mean()) / np.hypot(*se)
        assert abs(z) < 4, (name, a.mean(), b.mean(), se)
        assert abs(a.std() / b.std() - 1) < 0.2, (name, a.std(), b.std())
