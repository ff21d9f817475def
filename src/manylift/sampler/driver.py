"""The thin driver: chains, warm-up, thinning, progress, checkpoints and resume.

The driver is backend-agnostic (see :mod:`manylift.sampler.backends`).  It
keeps the retained low-dimensional draws (theta, sigma^2, Omega) and the
log-likelihood trace of every sweep, and calls ``on_draw(chain, draw, state)``
for every retained draw so callers can accumulate per-customer summaries in a
streaming way (the u_i of all draws are never stored).

Checkpoints (``.npz``, no pickle) hold the chain states, the RNG states, the
sweep counter, the traces so far and the caller's accumulator arrays; they are
written atomically every ``checkpoint_every`` sweeps and on Ctrl-C.  Resuming
from one gives draws identical to an uninterrupted run with the same seed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from manylift._core.atomic import atomic_path
from manylift._core.checks import check_positive_int
from manylift._core.errors import SamplerError
from manylift.sampler.state import State

__all__ = ["SamplerSettings", "SamplerRun", "run_sampler", "load_checkpoint"]


@dataclass(frozen=True)
class SamplerSettings:
    n_chains: int = 4
    n_warmup: int = 1000
    n_draws: int = 1000
    thin: int = 1
    random_state: int = 0
    checkpoint_every: int = 250

    def validate(self) -> None:
        check_positive_int("n_chains", self.n_chains, "PooledModel")
        check_positive_int("n_warmup", self.n_warmup, "PooledModel", 0)
        check_positive_int("n_draws", self.n_draws, "PooledModel")
        check_positive_int("thin", self.thin, "PooledModel")
        check_positive_int("checkpoint_every", self.checkpoint_every, "PooledModel")

    @property
    def total_sweeps(self) -> int:
        return self.n_warmup + self.n_draws * self.thin


@dataclass
class SamplerRun:
    """Retained draws (chain, draw, ...) and run statistics."""

    theta: np.ndarray  # (chains, draws, K)
    sigma2: np.ndarray  # (chains, draws)
    omega: np.ndarray  # (chains, draws, q, q) covariance of u
    loglik: np.ndarray  # (chains, total_sweeps) every sweep, warm-up included
    seconds: float
    backend: str
    settings: SamplerSettings
    resumed: bool = False

    @property
    def sweeps_per_second(self) -> float:
        return self.settings.total_sweeps / self.seconds if self.seconds > 0 else float("nan")


def _fingerprint(settings: SamplerSettings, backend_name: str, K: int, n: int, N: int,
                 spec=None, random_coefficients=()) -> str:
    import dataclasses

    return json.dumps({"chains": settings.n_chains, "warmup": settings.n_warmup,
                       "draws": settings.n_draws, "thin": settings.thin,
                       "seed": settings.random_state, "backend": backend_name,
                       "K": K, "customers": n, "rows": N,
                       "random_coefficients": list(random_coefficients),
                       "spec": dataclasses.asdict(spec) if spec is not None else None},
                      sort_keys=True)


_SETTING_NAMES = {"chains": "--chains", "warmup": "--warmup", "draws": "--draws",
                  "thin": "--thin", "seed": "--seed", "backend": "--backend",
                  "K": "the number of fixed coefficients (data or features)",
                  "customers": "the number of customers (data)", "rows": "the number of rows (data)",
                  "random_coefficients": "the random coefficients (--no-random-intercept or "
                                         "--covariates)",
                  "spec": "the sampler moves or priors (--plain-gibbs)"}


def _fingerprint_difference(old: str, new: str) -> str:
    """Plain words for what differs between two fingerprints."""
    try:
        a, b = json.loads(old), json.loads(new)
    except ValueError:
        return "a checkpoint from an older version of manylift"
    diffs = [f"{_SETTING_NAMES.get(k, k)}: {a.get(k)!r} in the checkpoint, {b.get(k)!r} now"
             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "; ".join(diffs) or "nothing visible"


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`run_sampler` (no pickle)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise SamplerError(f"Cannot read checkpoint {str(path)!r}: {exc}. Delete it to start "
                           f"afresh.") from None


def _save_checkpoint(path, backend, sweep, traces, accum, fingerprint):
    states = backend.states()
    arrays = {
        "sweep": np.array(sweep),
        "fingerprint": np.frombuffer(fingerprint.encode(), np.uint8),
        "rng": np.asarray(backend.get_rng()),
        "theta_state": np.stack([np.asarray(s.theta) for s in states]),
        "sigma2_state": np.array([float(s.sigma2) for s in states]),
        "omega_inv_state": np.stack([np.asarray(s.omega_inv) for s in states]),
        "u_state": np.stack([np.asarray(s.u) for s in states]),
    }
    for k, v in traces.items():
        arrays[f"trace_{k}"] = np.asarray(v)
    for k, v in (accum or {}).items():
        arrays[f"accum_{k}"] = np.asarray(v)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def run_sampler(
    backend,
    settings: SamplerSettings,
    *,
    on_draw: Callable[[int, int, State], None] | None = None,
    accumulator=None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> SamplerRun:
    """Run all chains through warm-up and sampling.

    Parameters
    ----------
    backend : NumpyBackend or JaxBackend (not yet initialised)
    settings : SamplerSettings
    on_draw : callable(chain, draw, State), default=None
        Called for every retained draw (streaming functionals).
    accumulator : object with ``state_dict() -> dict of arrays`` and
        ``load_state_dict(dict)``, default=None
        Saved in and restored from checkpoints together with the chains.
    checkpoint : path, default=None
        Where to write checkpoints (``.npz``); none if None.
    resume : bool, default=False
        Continue from ``checkpoint`` if it exists.
    progress : bool, default=True
        A tqdm progress bar with sweeps/s.
    stop_after : int, default=None
        Stop (after writing a checkpoint) once this many sweeps are done; used
        to test resume.  The returned run is then incomplete.
    """
    settings.validate()
    C, W, D, thin = settings.n_chains, settings.n_warmup, settings.n_draws, settings.thin
    total = settings.total_sweeps
    design = backend.design
    fp = _fingerprint(settings, backend.name, design.K, design.n_customers, design.n_rows,
                      getattr(backend, "spec", None), getattr(design, "r_names", ()))
    seeds = np.random.SeedSequence(settings.random_state).spawn(C)
    backend.init(seeds)
    K, q = design.K, design.q
    traces = {
        "theta": np.zeros((C, D, K)),
        "sigma2": np.zeros((C, D)),
        "omega": np.zeros((C, D, q, q)),
        "loglik": np.zeros((C, total)),
    }
    sweep = 0
    resumed = False
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        ck = load_checkpoint(checkpoint)
        if bytes(ck["fingerprint"]).decode() != fp:
            raise SamplerError(
                f"The checkpoint {str(checkpoint)!r} was written by a run with other settings or "
                f"data ({_fingerprint_difference(bytes(ck['fingerprint']).decode(), fp)}). Resume "
                f"with the checkpoint's settings, or delete it (or run without --resume) to "
                f"start afresh."
            )
        sweep = int(ck["sweep"])
        backend.set_states([State(ck["theta_state"][c], float(ck["sigma2_state"][c]),
                                  ck["omega_inv_state"][c], ck["u_state"][c]) for c in range(C)])
        backend.set_rng(ck["rng"])
        backend.sweep = sweep
        for k in traces:
            traces[k] = ck[f"trace_{k}"].copy()
        if accumulator is not None:
            accumulator.load_state_dict({k[6:]: v for k, v in ck.items() if k.startswith("accum_")})
        resumed = True

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=sweep, unit="sweep", desc=f"Gibbs ({backend.name}, {C} chains)",
                   dynamic_ncols=True, mininterval=0.5)
    t0 = time.perf_counter()
    last_ck = sweep
    # The K x K and q x q linear algebra of a sweep is small: multithreaded BLAS only fights
    # with the sweep's own threads (numba / XLA) for the cores, so keep it single-threaded.
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=1, user_api="blas")
    # Ctrl-C: note it and stop at the next consistent point (all chains at the same sweep,
    # draws recorded), so the checkpoint written there resumes exactly.
    interrupted = []
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        while sweep < total:
            if sweep < W:
                n = min(W - sweep, settings.checkpoint_every - (sweep - last_ck), W - sweep)
                n = max(n, 1)
            else:
                # stop at the next retained draw
                n = thin - ((sweep - W) % thin)
            out = backend.run(n)
            traces["loglik"][:, sweep:sweep + n] = np.asarray(out["loglik"]).T
            sweep += n
            if sweep > W and (sweep - W) % thin == 0:
                d = (sweep - W) // thin - 1
                for c, st in enumerate(backend.states()):
                    traces["theta"][c, d] = np.asarray(st.theta)
                    traces["sigma2"][c, d] = float(st.sigma2)
                    traces["omega"][c, d] = np.linalg.inv(np.asarray(st.omega_inv))
                    if on_draw is not None:
                        on_draw(c, d, st)
            if bar is not None:
                bar.update(n)
            if checkpoint is not None and (sweep - last_ck >= settings.checkpoint_every
                                           or sweep == total):
                _save_checkpoint(checkpoint, backend, sweep, traces,
                                 accumulator.state_dict() if accumulator else None, fp)
                last_ck = sweep
            if interrupted:
                raise KeyboardInterrupt
            if stop_after is not None and sweep >= stop_after:
                if checkpoint is not None and last_ck != sweep:
                    _save_checkpoint(checkpoint, backend, sweep, traces,
                                     accumulator.state_dict() if accumulator else None, fp)
                break
    except KeyboardInterrupt:
        if checkpoint is not None:
            _save_checkpoint(checkpoint, backend, sweep, traces,
                             accumulator.state_dict() if accumulator else None, fp)
            raise SamplerError(
                f"Interrupted at sweep {sweep} of {total}; a checkpoint was written to "
                f"{str(checkpoint)!r}. Run again with resume=True (CLI: --resume) to continue."
            ) from None
        raise
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        limiter.restore_original_limits()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    return SamplerRun(traces["theta"], traces["sigma2"], traces["omega"], traces["loglik"],
                      seconds, backend.name, settings, resumed)
