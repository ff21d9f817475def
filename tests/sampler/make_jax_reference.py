"""Record the JAX backend's draws for ``test_jax_reference_draws.py`` (run once, by hand).

``python tests/sampler/make_jax_reference.py`` writes ``tests/sampler/data/jax_reference.npz``:
a small design (its arrays, so the test does not depend on the simulator staying the same)
and, per case, the draws of the first sweeps of ``JaxBackend`` for a fixed seed.  It was
run on the JaxBackend of commit 4dac5b9 (before the sweep was written once for one and
many devices), so the test checks that the rewrite draws what the old backend drew.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

CASES = {
    # name: (ModelSpec options, dtype, random_intercept)
    "default": ({}, "float64", True),
    "plain_gibbs": ({"expansion": False, "interweave": False}, "float64", True),
    "float32": ({}, "float32", True),
    "no_intercept": ({}, "float64", False),
}
N_CHAINS, CALLS = 2, (4, 3)  # two run() calls: 7 sweeps


def design_arrays(random_intercept: bool) -> dict:
    from manylift.pooled.build import build_inputs
    from manylift.simulate.program import simulate_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(60, 4, 6, rows_per_customer=5, mode="model", random_state=5)
        d = build_inputs(data, holdout=False, random_intercept=random_intercept).design
    out = {k: np.asarray(getattr(d, k)) for k in ("y", "customer", "R", "dense", "codes", "w",
                                                   "FtF", "RtR")}
    out["meta"] = np.frombuffer(json.dumps({
        "n_customers": d.n_customers, "dense_names": d.dense_names, "term_names": d.term_names,
        "n_levels": d.n_levels, "times_w": d.times_w, "names": d.names,
        "term_slices": {k: [v.start, v.stop] for k, v in d.term_slices.items()},
        "r_names": d.r_names}).encode(), np.uint8)
    return out


def design_from_arrays(a: dict):
    from manylift.sampler.design import Design

    meta = json.loads(bytes(a["meta"]).decode())
    return Design(
        y=a["y"], customer=a["customer"], n_customers=meta["n_customers"], R=a["R"],
        dense=a["dense"], dense_names=tuple(meta["dense_names"]), codes=a["codes"],
        term_names=tuple(meta["term_names"]), n_levels=tuple(meta["n_levels"]),
        times_w=tuple(meta["times_w"]), w=a["w"], FtF=a["FtF"], RtR=a["RtR"],
        names=tuple(meta["names"]),
        term_slices={k: slice(*v) for k, v in meta["term_slices"].items()},
        r_names=tuple(meta["r_names"]))


def draws(design, spec_options: dict, dtype: str) -> dict:
    from manylift.sampler.gibbs_jax import JaxBackend
    from manylift.sampler.state import ModelSpec

    b = JaxBackend(design, ModelSpec(**spec_options), N_CHAINS, dtype=dtype)
    b.init(np.random.SeedSequence(2024).spawn(N_CHAINS))
    out = {"u0": np.stack([s.u for s in b.states()]),
           "theta0": np.stack([s.theta for s in b.states()]),
           "sigma20": np.array([s.sigma2 for s in b.states()])}
    runs = [b.run(n) for n in CALLS]
    for k in ("loglik", "theta", "sigma2", "omega_inv"):
        out[k] = np.concatenate([r[k] for r in runs])
    out["u"] = np.stack([s.u for s in b.states()])
    return out


def main() -> None:
    arrays = {}
    for ri in (True, False):
        for k, v in design_arrays(ri).items():
            arrays[f"design{int(ri)}_{k}"] = v
    for name, (opts, dtype, ri) in CASES.items():
        a = {k[len(f"design{int(ri)}_"):]: v for k, v in arrays.items()
             if k.startswith(f"design{int(ri)}_")}
        for k, v in draws(design_from_arrays(a), opts, dtype).items():
            arrays[f"{name}_{k}"] = v
    path = Path(__file__).parent / "data" / "jax_reference.npz"
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
