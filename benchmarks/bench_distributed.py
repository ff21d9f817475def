"""One process against two: peak memory per process, seconds per sweep, all-reduce share.

Usage::

    python benchmarks/bench_distributed.py                       # 100,000 customers
    python benchmarks/bench_distributed.py --sizes 100000 584000  # and paper scale

For each size it simulates a program (140 campaigns, 96 weeks, about 28 rows per
customer, ``mode="model"``), writes it to Parquet and partitions it into 8 buckets
(``manylift partition``), then runs the fit's pipeline in fresh worker processes,
first as 1 process, then as 2 processes on 127.0.0.1 (``jax.distributed``, gloo):

1. read this process's buckets (row group by row group) and validate them;
2. ``build_inputs`` with the collectives (global bins, codes, F'F);
3. the sharded JAX backend over the devices of all processes, ``--chains`` chains,
   ``--dtype`` rows; compile, then time ``--sweeps`` sweeps in one ``run`` call;
4. the same sweeps with the reduction replaced by this process's own sum (no
   communication; the draws are wrong, the work is the same): the all-reduce share
   of a sweep is ``1 - t(no communication) / t(psum)``.

Each worker reports its peak resident memory (Linux ``VmHWM``) and the phase
timings.  The target of issue 19: with 2 processes each one's peak is at most 60% of
the 1-process peak.  On this 2-core machine the two processes share the cores, so
time per sweep is not expected to fall.  The load average is recorded before and
after each run (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine_info import base_machine, git_commit, load_average  # noqa: E402

WORKER = r"""
import json, sys, time
import numpy as np
t_start = time.perf_counter()
P, pid, port, data_dir, chains, sweeps, dtype = sys.argv[1:8]
P, pid, chains, sweeps = int(P), int(pid), int(chains), int(sweeps)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

from manylift._core.distributed import start
comm = start(P, pid, f"127.0.0.1:{port}", heartbeat_timeout=120)
import jax
jax.devices()
res0 = {"rss_after_imports_gib": status("VmRSS") / 2**30}
from manylift.pooled.distributed import load_process_data
from manylift.pooled.build import build_inputs
from manylift.sampler import gibbs_jax as GJ
from manylift.sampler import sharding as SH
from manylift.sampler.state import ModelSpec
res = {"process": pid, "processes": P, **res0}
t = time.perf_counter()
data = load_process_data(data_dir, None, comm)
res["read_validate_s"] = time.perf_counter() - t
res["rows"], res["customers"] = len(data.frame), int(data.frame["customer_id"].nunique())
res["rss_after_read_gib"] = status("VmRSS") / 2**30
res["hwm_after_read_gib"] = status("VmHWM") / 2**30
t = time.perf_counter()
inputs = build_inputs(data, comm=comm)
del data  # as the fit does once the rows are in the design
import dataclasses
inputs = dataclasses.replace(inputs, arrays=None)
res["build_s"] = time.perf_counter() - t
res["rss_after_build_gib"] = status("VmRSS") / 2**30
res["hwm_after_build_gib"] = status("VmHWM") / 2**30
spec = ModelSpec()
t = time.perf_counter()
b = SH.ShardedJaxBackend(inputs.design, spec, chains, mesh=SH.make_mesh(), dtype=dtype,
                         comm=comm)
res["to_devices_s"] = time.perf_counter() - t
res["hwm_after_devices_gib"] = status("VmHWM") / 2**30
res["K"], res["rows_per_shard"] = inputs.design.K, b.sdesign.slayout.rows_per_shard
b.init(np.random.SeedSequence(0).spawn(chains))
t = time.perf_counter()
b.run(sweeps)  # compile (and the first sweeps)
res["compile_and_first_s"] = time.perf_counter() - t
res["hwm_after_compile_gib"] = status("VmHWM") / 2**30
t = time.perf_counter()
b.run(sweeps)
res["seconds_per_sweep"] = (time.perf_counter() - t) / sweeps

# the same sweeps with each process's own sum in place of the psum (no communication)
from jax.sharding import PartitionSpec as Ps
sd = b.sdesign
dspec = GJ.ShardedDesign.partition_specs(sd.slayout, len(sd.members))
def local_run(keys, states, sd, start, n):
    return GJ.run_chains(keys, states, sd, start, n, length=b.bucket(sweeps), spec=spec,
                         reduce=GJ.sum_shards, first_shard=SH._first_shard(sd),
                         placement="bench")
fn = jax.jit(jax.shard_map(local_run, mesh=b.mesh,
                           in_specs=(Ps(), SH._state_specs(), dspec, Ps(), Ps()),
                           out_specs=(SH._state_specs(), (Ps(), Ps(), Ps(), Ps())),
                           check_vma=False))
import jax.numpy as jnp
states = b._states
out = fn(b._keys, states, sd, jnp.uint32(0), jnp.uint32(sweeps))
jax.block_until_ready(out)
t = time.perf_counter()
out = fn(b._keys, out[0], sd, jnp.uint32(0), jnp.uint32(sweeps))
jax.block_until_ready(out)
res["seconds_per_sweep_no_allreduce"] = (time.perf_counter() - t) / sweeps
res["allreduce_share"] = 1 - res["seconds_per_sweep_no_allreduce"] / res["seconds_per_sweep"]
res["peak_rss_gib"] = status("VmHWM") / 2**30
res["total_s"] = time.perf_counter() - t_start
comm.gather(np.zeros(1))  # leave together
print("RESULT " + json.dumps(res), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(n_customers: int, folder: Path, seed: int) -> dict:
    from manylift.data.partition import partition_exposures
    from manylift.simulate.program import simulate_program

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(n_customers, 140, 96, mode="model", random_state=seed)
    src = folder / "exposures.parquet"
    data.frame.to_parquet(src, index=False, row_group_size=1 << 18)
    rows = len(data.frame)
    del data
    info = partition_exposures(src, folder / "ds", 8)
    src.unlink()
    return {"customers": n_customers, "rows": rows, "buckets": info.n_buckets,
            "prepare_s": round(time.perf_counter() - t, 1)}


def _run(P: int, ds: Path, chains: int, sweeps: int, dtype: str) -> list[dict]:
    port = _free_port()
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(P), str(i), str(port), str(ds),
                               str(chains), str(sweeps), dtype],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(P)]
    out = []
    for p in procs:
        o, e = p.communicate(timeout=7200)
        if p.returncode != 0:
            raise RuntimeError(f"worker failed ({p.returncode}):\n{e[-4000:]}")
        line = [x for x in o.splitlines() if x.startswith("RESULT ")][-1]
        out.append({k: (round(v, 4) if isinstance(v, float) else v)
                    for k, v in json.loads(line[7:]).items()})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    p.add_argument("--chains", type=int, default=1)
    p.add_argument("--sweeps", type=int, default=16)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "distributed.json")
    args = p.parse_args(argv)
    import jax

    from manylift._core.atomic import write_json

    result = {"benchmark": "bench_distributed", "command": " ".join(["python", *sys.argv]),
              "machine": {**base_machine(), "jax": jax.__version__}, "commit": git_commit(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "chains": args.chains, "sweeps_timed": args.sweeps, "dtype": args.dtype,
              "gpu": "none available to this task: not measured", "sizes": {}}
    for n in args.sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
            entry = {"load_before_prepare": load_average(), **_prepare(n, Path(tmp), args.seed)}
            for P in (1, 2):
                entry[f"load_before_{P}"] = load_average()
                entry[f"processes_{P}"] = _run(P, Path(tmp) / "ds", args.chains, args.sweeps,
                                               args.dtype)
                entry[f"load_after_{P}"] = load_average()
            one = entry["processes_1"][0]["peak_rss_gib"]
            two = max(w["peak_rss_gib"] for w in entry["processes_2"])
            entry["peak_ratio_2_vs_1"] = round(two / one, 3)
            entry["target_peak_ratio"] = 0.6
            result["sizes"][str(n)] = entry
            print(json.dumps(entry, indent=1), flush=True)
        write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
