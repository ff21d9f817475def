"""A fit over several processes: global quantities from per-process summaries.

Fast tests run P "processes" as threads sharing an in-memory exchange
(:class:`ThreadCollectives`, the same collective calls as JAX's runtime), against a
global computation on all the data:

* exact quantiles equal ``numpy.quantile`` on the concatenated values, bit for bit;
* level merges from summed counts equal the row-level merges;
* the global joint-cell layout equals the one of the whole design;
* ``build_inputs`` over 3 processes equals it over one (same holdout rows, bins,
  level codes and merges, F'F and means to rounding), each process holding whole
  customers.

The slow test runs real processes on 127.0.0.1 through ``jax.distributed``
(``manylift fit --processes 2``) against ``--processes 1``: same bins and level codes,
posteriors within 3 combined Monte Carlo standard errors; a killed process stops the
other within the heartbeat timeout with JAX's message; ``--resume`` then finishes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from manylift._core.distributed import Collectives, LocalCollectives, exact_quantiles
from manylift.pooled.build import (
    _cell_neighbours,
    build_inputs,
    merge_sparse_levels,
    merge_sparse_levels_counts,
)


class ThreadCollectives(Collectives):
    """P threads exchanging arrays through a shared board (a test double of
    JaxCollectives: same calls, same order on every "process")."""

    def __init__(self, board, process_id: int, n_processes: int):
        self.board, self.process_id, self.n_processes = board, process_id, n_processes

    def gather(self, x):
        b = self.board
        with b["cond"]:
            gen = b["gen"]
            b["slots"].setdefault(gen, {})[self.process_id] = np.asarray(x).ravel().copy()
            if len(b["slots"][gen]) == self.n_processes:
                b["gen"] += 1
                b["cond"].notify_all()
            else:
                while b["gen"] == gen:
                    b["cond"].wait(timeout=30)
            got = b["slots"][gen]
        return [got[p] for p in range(self.n_processes)]


def run_processes(P, fn):
    """fn(comm) on P threads; returns their results in process order."""
    board = {"cond": threading.Condition(), "gen": 0, "slots": {}}
    out, errors = [None] * P, []

    def target(p):
        try:
            out[p] = fn(ThreadCollectives(board, p, P))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(p,)) for p in range(P)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return out


def test_exact_quantiles_equal_numpy_on_all_values(rng):
    qs = np.array([0.0, 0.1, 0.2, 1 / 3, 0.5, 0.8, 0.999, 1.0])
    for trial in range(6):
        sizes = rng.integers(0, 400, size=3)
        sizes[trial % 3] = max(sizes[trial % 3], 1)
        if trial == 5:
            sizes[1] = 0  # a process with no values
        parts = [np.round(rng.normal(size=s) * 10.0 ** rng.integers(-3, 4), rng.integers(0, 3))
                 for s in sizes]  # heavy ties, negative values and zeros
        parts[0][:3] = -0.0
        got = run_processes(3, lambda c, parts=parts: exact_quantiles(c, parts[c.process_id], qs))
        expected = np.quantile(np.concatenate(parts), qs)
        for g in got:
            np.testing.assert_array_equal(g, expected)
    # one process: numpy itself
    v = rng.normal(size=50)
    np.testing.assert_array_equal(exact_quantiles(LocalCollectives(), v, qs), np.quantile(v, qs))


def test_collectives_sum_max_and_strings():
    def fn(c):
        return (c.sum(np.array([c.process_id + 0.5, 1])), c.max(np.array([c.process_id])),
                c.gather_strings(["ä" * c.process_id, f"p{c.process_id}"]))

    for s, m, strs in run_processes(3, fn):
        np.testing.assert_array_equal(s, [4.5, 3])
        assert m[0] == 2
        assert strs == [["", "p0"], ["ä", "p1"], ["ää", "p2"]]


def test_merges_from_summed_counts_equal_row_merges(rng):
    for _ in range(30):
        n_stock = 5
        L = 5 * n_stock + 1
        values = rng.integers(0, L, size=rng.integers(50, 3000))
        treated = rng.random(values.size) < rng.uniform(0.1, 0.9)
        nb = _cell_neighbours(n_stock, L)
        ref, _ = merge_sparse_levels(values, treated, nb, min_rows=20)
        lv = np.unique(values)
        nt = np.array([np.sum(treated[values == v]) for v in lv])
        nc = np.array([np.sum(~treated[values == v]) for v in lv])
        assert merge_sparse_levels_counts(lv, nt, nc, nb, 20) == ref


def _split_by_customer(frame, P):
    from manylift.data.partition import bucket_of

    b = bucket_of(frame["customer_id"].to_numpy(), P)
    return [frame.loc[b == p].reset_index(drop=True) for p in range(P)]


@pytest.fixture(scope="module")
def program():
    from manylift.simulate.program import simulate_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(400, 6, 15, random_state=4)
    return data


def test_build_inputs_over_processes_equals_one_process(program):
    from manylift.data.experiment import ExperimentData

    whole = build_inputs(program, comm=LocalCollectives())
    frames = _split_by_customer(program.frame, 3)
    kw = dict(covariates=list(program.covariates), activity_col=program.activity_col,
              check_arms=False, check_balance=False)
    parts = run_processes(3, lambda c: build_inputs(
        ExperimentData.from_frame(frames[c.process_id], **kw), comm=c))
    assert sum(p.design.n_rows for p in parts) == whole.design.n_rows
    for p, frame in zip(parts, frames, strict=True):
        fe, fw = p.features, whole.features
        np.testing.assert_array_equal(fe.stock_edges_, fw.stock_edges_)  # exact
        np.testing.assert_array_equal(fe.activity_edges_, fw.activity_edges_)
        np.testing.assert_allclose(fe.covariate_means_, fw.covariate_means_, rtol=1e-12)
        assert abs(fe.prop_mean_ - fw.prop_mean_) < 1e-12
        assert p.level_maps == whole.level_maps
        for t in whole.levels:
            np.testing.assert_array_equal(p.levels[t], whole.levels[t])
        np.testing.assert_allclose(p.design.FtF, whole.design.FtF, rtol=1e-12, atol=1e-9)
        assert abs(p.y_mean - whole.y_mean) < 1e-12 * abs(whole.y_mean) + 1e-12
        assert p.distributed["rows"] == len(program.frame)
        # this process's rows: the same holdout, codes and arrays as in the whole
        key = ["customer_id", "week"]
        idx = program.frame.reset_index().merge(frame[key], on=key)["index"].to_numpy()
        np.testing.assert_array_equal(p.holdout, whole.holdout[idx])
        for t in whole.codes:
            np.testing.assert_array_equal(p.codes[t], whole.codes[t][idx])
        np.testing.assert_allclose(p.arrays.prop_treated, whole.arrays.prop_treated[idx],
                                   atol=1e-12)


def test_global_joint_cells_equal_the_whole_designs(program):
    from manylift.data.experiment import ExperimentData
    from manylift.sampler.design import joint_cells
    from manylift.sampler.sharding import global_joint_cells

    whole = build_inputs(program, comm=LocalCollectives()).design
    frames = _split_by_customer(program.frame, 2)
    kw = dict(covariates=list(program.covariates), activity_col=program.activity_col,
              check_arms=False, check_balance=False)
    for mj in (1 << 16, 64, 2):
        ref = joint_cells(whole, mj)
        assert global_joint_cells(whole, LocalCollectives(), mj).columns == ref.columns

        def fn(c, mj=mj):
            d = build_inputs(ExperimentData.from_frame(frames[c.process_id], **kw),
                             comm=c).design
            return d, global_joint_cells(d, c, mj)

        got = run_processes(2, fn)
        for _, jc in got:  # the layout every process uses is the whole design's
            assert jc.columns == ref.columns and jc.groups == ref.groups
            for a, b in zip(jc.members, ref.members, strict=True):
                np.testing.assert_array_equal(a, b)
        # and the rows' cells count the same (joint code, arm) cells as the whole's
        for g in range(len(ref.members)):
            width = 2 * ref.members[g].shape[1]
            np.testing.assert_array_equal(
                sum(np.bincount(jc.cells[g], minlength=width) for _, jc in got),
                np.bincount(ref.cells[g], minlength=width))


# -- real processes on localhost ------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fit_cmd(data, out, *extra):
    return [sys.executable, "-m", "manylift.cli", "fit", str(data), "--chains", "2",
            "--warmup", "40", "--draws", "200", "--checkpoint-every", "20", "--quiet",
            "--out", str(out), *extra]


def _start(data, out, P, port, *extra, env=None):
    return [subprocess.Popen(_fit_cmd(data, out, "--processes", str(P), "--process-id", str(i),
                                      "--coordinator", f"127.0.0.1:{port}",
                                      "--heartbeat-timeout", "10", *extra),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for i in range(P)]


@pytest.mark.slow
def test_two_processes_on_localhost_agree_stop_and_resume(tmp_path):
    import arviz as az

    from manylift.simulate.program import simulate_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(300, 5, 12, mode="model", random_state=3)
    data.frame.to_parquet(tmp_path / "e.parquet", index=False)
    from manylift.data.partition import partition_exposures

    partition_exposures(tmp_path / "e.parquet", tmp_path / "ds", 4)
    # the runs share JAX's compilation cache: they compile the same programs
    env = dict(os.environ, OMP_NUM_THREADS="1", JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jit"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    t0 = time.time()
    one = subprocess.run(_fit_cmd(tmp_path / "ds", tmp_path / "p1", "--processes", "1"),
                         capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    print(f"one process: {time.time() - t0:.0f} s")

    # two processes; process 1 is killed once both have written a checkpoint
    out2 = tmp_path / "p2"
    procs = _start(tmp_path / "ds", out2, 2, _free_port(), env=env)
    deadline = time.time() + 300
    while not all((out2 / f"checkpoint.p{i}.npz").exists() for i in range(2)):
        assert time.time() < deadline and all(p.poll() is None for p in procs), \
            [p.communicate()[1][-2000:] for p in procs if p.poll() is not None]
        time.sleep(0.2)
    print(f"two processes until both checkpointed: {time.time() - deadline + 300:.0f} s")
    procs[1].kill()
    killed_at = time.time()
    try:
        err0 = procs[0].communicate(timeout=60)[1]  # heartbeat 10 s: well within 60 s
    except subprocess.TimeoutExpired:
        procs[0].kill()
        pytest.fail("process 0 did not stop within 60 s of process 1's death")
    stopped_after = time.time() - killed_at
    procs[1].communicate()
    assert procs[0].returncode != 0
    assert "JAX distributed service detected fatal errors" in err0, err0[-3000:]
    assert stopped_after < 45, stopped_after
    assert not (out2 / "results.json").exists()

    # both again with --resume: they agree on the last common checkpoint and finish
    procs = _start(tmp_path / "ds", out2, 2, _free_port(), "--resume", env=env)
    t0 = time.time()
    outs = [p.communicate(timeout=600) for p in procs]
    print(f"stopped {stopped_after:.0f} s after the kill; resumed run {time.time() - t0:.0f} s")
    for p, (_, e) in zip(procs, outs, strict=True):
        assert p.returncode == 0, e[-3000:]
    assert not list(out2.glob("checkpoint*"))  # removed once the results are written

    r1 = json.loads((tmp_path / "p1" / "results.json").read_text())
    r2 = json.loads((out2 / "results.json").read_text())
    assert r2["sampler"]["processes"] == 2 and r2["data"] == r1["data"]
    for k in ("stock_edges", "activity_edges", "recency_edges"):
        assert r2["features"][k] == r1["features"][k], k  # the same bins, exactly
    assert r2["levels"] == r1["levels"]  # the same level codes
    c1 = pd.read_parquet(tmp_path / "p1" / "customers.parquet")
    c2 = pd.read_parquet(out2 / "customers.parquet")
    assert sorted(c1["customer_id"]) == sorted(c2["customer_id"])
    # posteriors within 3 combined Monte Carlo standard errors
    p1 = az.from_netcdf(tmp_path / "p1" / "posterior.nc").posterior
    p2 = az.from_netcdf(out2 / "posterior.nc").posterior
    checks = [("sigma_u", None), ("taubar", None)] + [
        ("campaign_effect", {"campaign": c}) for c in p1["campaign"].values]
    for name, sel in checks:
        a, b = (p[name].sel(sel) if sel else p[name] for p in (p1, p2))
        se = [float(np.std(x.values)) / np.sqrt(float(az.ess(x.values))) for x in (a, b)]
        z = (float(a.mean()) - float(b.mean())) / np.hypot(*se)
        assert abs(z) < 3, (name, sel, float(a.mean()), float(b.mean()), se)


@pytest.mark.slow
def test_cli_devices_runs_the_sharded_sweep(tmp_path):
    """--devices 2 on CPU: the CLI sets the host-device flag before JAX starts, and the
    fit runs the sharded sweep over 2 devices (the ordinary outputs, report included)."""
    from manylift.simulate.program import simulate_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(120, 4, 8, random_state=2)
    data.frame.to_parquet(tmp_path / "e.parquet", index=False)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    code = ("import sys, jax; from manylift.cli.main import main; rc = main(sys.argv[1:]); "
            "print('DEVICES', len(jax.devices())); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "fit", str(tmp_path / "e.parquet"),
                           "--devices", "2", "--chains", "1", "--warmup", "10", "--draws", "10",
                           "--quiet", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DEVICES 2" in proc.stdout
    r = json.loads((tmp_path / "o" / "results.json").read_text())
    assert r["sampler"]["backend"] == "jax-sharded"
    assert (tmp_path / "o" / "report.html").exists()


def test_devices_after_jax_started_is_refused(monkeypatch):
    pytest.importorskip("jax")
    import jax

    from manylift._core.errors import SamplerError
    from manylift.cli._fit import set_host_devices

    jax.devices()  # JAX has started in this process
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    with pytest.raises(SamplerError, match="before JAX starts"):
        set_host_devices(3)
    # the other flags are kept, the device count replaced
    assert os.environ["XLA_FLAGS"].split() == ["--xla_cpu_enable_fast_math=false",
                                                "--xla_force_host_platform_device_count=3"]


def test_pooled_model_devices_option_is_checked(program):
    from manylift._core.errors import ManyliftError
    from manylift.pooled.model import PooledModel

    with pytest.raises(ManyliftError, match="devices"):
        PooledModel(devices=0, n_chains=1, n_warmup=1, n_draws=1, progress=False).fit(program)
    with pytest.raises(ManyliftError, match="dtype"):
        PooledModel(dtype="float16", progress=False).fit(program)
    assert "devices=2" in repr(PooledModel(devices=2))


def test_load_process_data_splits_whole_customers_and_checks_globally(tmp_path):
    """Each process gets whole customers (from a partitioned folder: only its buckets;
    from a file: its customers by hash); an intervention whose arms sit in different
    processes passes; one without controls anywhere fails on every process alike;
    date weeks count from the earliest date of any process."""
    from manylift._core.distributed import DistributedError
    from manylift._core.errors import InterventionArmError
    from manylift.data.partition import bucket_of, partition_exposures
    from manylift.pooled.distributed import load_process_data

    gen = np.random.default_rng(1)
    n = 60
    cust = np.repeat(np.arange(n), 4)
    frame = pd.DataFrame({
        "customer_id": cust, "campaign_id": np.tile([1, 2, 1, 2], n),
        "week": pd.to_datetime("2024-01-01") + pd.to_timedelta(
            np.tile([0, 7, 14, 21], n), unit="D"),
        "treated": gen.integers(0, 2, cust.size), "outcome": gen.normal(size=cust.size)})
    # week 4 of campaign 2: treated only for customers of process 0, control only for 1
    owner = bucket_of(frame["customer_id"].to_numpy(), 2)
    last = frame["week"] == frame["week"].max()
    frame.loc[last, "treated"] = (owner[last.to_numpy()] == 0).astype(int)
    frame.to_parquet(tmp_path / "e.parquet", index=False)
    partition_exposures(tmp_path / "e.parquet", tmp_path / "ds", 4)
    for src in (tmp_path / "ds", tmp_path / "e.parquet"):
        got = run_processes(2, lambda c, src=src: load_process_data(src, None, c))
        ids = [set(d.frame["customer_id"]) for d in got]
        assert not ids[0] & ids[1] and ids[0] | ids[1] == set(range(n))
        whole = sorted(pd.concat([d.frame for d in got])["week"].unique().tolist())
        assert whole == [0, 1, 2, 3]  # from the earliest date of any process
    # no control rows anywhere in that intervention: both processes raise it
    frame.loc[last, "treated"] = 1
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(InterventionArmError, match="in any process"):
        run_processes(2, lambda c: load_process_data(tmp_path / "bad.parquet", None, c))
    # a problem on one process only: every process raises one error naming it
    with pytest.raises(DistributedError, match=r"process\(es\) \[1\]"):
        run_processes(2, lambda c: load_process_data(
            tmp_path / ("e.parquet" if c.process_id == 0 else "missing.parquet"), None, c))
