"""``PooledModel``: the hierarchical Bayesian model over many repeated experiments.

``PooledModel(...).fit(data) -> PooledFit`` builds the features and the
calibration / holdout split, runs the Gibbs sampler (numpy reference or JAX)
and keeps the posterior of the low-dimensional parameters plus streaming
per-customer summaries of the unobserved responsiveness uI_i.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from manylift._core.checks import check_in
from manylift._core.errors import DataError, SamplerError
from manylift._core.memory import peak_rss_gib
from manylift.data.experiment import ExperimentData
from manylift.features.exposure import ExposureFeatures
from manylift.pooled.build import build_inputs
from manylift.sampler.backends import get_backend
from manylift.sampler.driver import SamplerSettings, run_sampler
from manylift.sampler.state import ModelSpec

__all__ = ["PooledModel"]


class StreamingCustomers:
    """Per-customer Welford mean / variance of uI_i over retained draws (all chains),
    group averages of uI per draw, and the holdout customers' uI for a capped
    number of *functional* draws, spooled to a file (read back block by block by
    the holdout functionals, so no (draws x holdout customers) array is held in
    memory).

    The spool is ``spool_path`` when given (next to the checkpoint, so that a
    resumed run continues it), else a file in a temporary folder removed with
    this object. Row k of the spool is functional draw k (chain-major order,
    ``functional_draws[k]``); rows are written in place as draws arrive.
    """

    def __init__(self, n_customers: int, groups: dict, holdout_customers: np.ndarray,
                 n_chains: int, n_draws: int, max_functional_draws: int = 400,
                 ui_index: int = 0, spool_path: str | os.PathLike | None = None):
        self.n = n_customers
        self.ui_index = ui_index  # coordinate of uI_i in u_i (1 with the random intercept)
        self.count = np.zeros(1)
        self.mean = np.zeros(n_customers)
        self.m2 = np.zeros(n_customers)
        self.groups = groups  # name -> sparse (G x n) row-average matrix
        self.group_draws = {k: np.zeros((n_chains, n_draws, M.shape[0])) for k, M in groups.items()}
        self.holdout_customers = holdout_customers
        every = max(1, int(np.ceil(n_chains * n_draws / max_functional_draws)))
        self.functional_mask = (np.arange(n_chains * n_draws).reshape(n_chains, n_draws) % every) == 0
        self.n_functional = int(self.functional_mask.sum())
        self.functional_index = np.cumsum(self.functional_mask.ravel()).reshape(
            n_chains, n_draws) - 1
        self.functional_draws = np.argwhere(self.functional_mask)  # (n_f, 2) chain, draw
        self._n_hold = int(holdout_customers.size)
        self._tmp = None
        if spool_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="manylift-")
            spool_path = Path(self._tmp.name) / "holdout_uI.f32"
        self.spool_path = Path(spool_path)
        self._fh = None

    # -- the spool --------------------------------------------------------
    @property
    def _row_bytes(self) -> int:
        return 4 * self._n_hold

    def open_spool(self, keep: bool = False) -> None:
        """Open the spool for writing: a fresh (sparse) file, or the existing one (resume)."""
        if self._fh is not None:
            return
        size = self.n_functional * self._row_bytes
        if keep and self.spool_path.exists():
            self._fh = open(self.spool_path, "r+b")  # noqa: SIM115 - closed in close_spool
        else:
            self.spool_path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.spool_path, "w+b")  # noqa: SIM115 - closed in close_spool
        self._fh.truncate(size)

    def close_spool(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove_spool(self) -> None:
        """Delete the spool (the run is saved); the holdout functionals need it until then."""
        self.close_spool()
        if self.spool_path.exists():
            self.spool_path.unlink()

    def read_holdout_uI(self, rows: slice) -> np.ndarray:
        """uI of the holdout customers in functional draws ``rows`` (b, n_holdout) float32."""
        start, stop, _ = rows.indices(self.n_functional)
        b = max(stop - start, 0)
        if self._fh is not None:
            self._fh.flush()
        if b == 0 or self._n_hold == 0:
            return np.zeros((b, self._n_hold), np.float32)
        out = np.fromfile(self.spool_path, dtype=np.float32, count=b * self._n_hold,
                          offset=start * self._row_bytes)
        return out.reshape(b, self._n_hold)

    @property
    def holdout_uI(self) -> np.ndarray:
        """All functional draws' holdout uI, memory-mapped from the spool (read-only)."""
        if self._fh is not None:
            self._fh.flush()
        if self.n_functional == 0 or self._n_hold == 0:
            return np.zeros((self.n_functional, self._n_hold), np.float32)
        return np.memmap(self.spool_path, dtype=np.float32, mode="r",
                         shape=(self.n_functional, self._n_hold))

    # -- the driver's protocol --------------------------------------------
    def __call__(self, chain: int, draw: int, state) -> None:
        uI = np.asarray(state.u)[:, self.ui_index]
        self.count += 1
        delta = uI - self.mean
        self.mean += delta / self.count[0]
        self.m2 += delta * (uI - self.mean)
        for k, M in self.groups.items():
            self.group_draws[k][chain, draw] = M @ uI
        if self.functional_mask[chain, draw] and self._n_hold:
            self.open_spool(keep=True)
            self._fh.seek(int(self.functional_index[chain, draw]) * self._row_bytes)
            self._fh.write(uI[self.holdout_customers].astype(np.float32).tobytes())

    def state_dict(self) -> dict:
        if self._fh is not None:
            self._fh.flush()  # the checkpoint's draws are on disk with it
        out = {"count": self.count, "mean": self.mean, "m2": self.m2,
               "spool_rows": np.array([self.n_functional, self._n_hold])}
        out.update({f"group_{k}": v for k, v in self.group_draws.items()})
        return out

    def load_state_dict(self, d: dict) -> None:
        self.count, self.mean, self.m2 = d["count"].copy(), d["mean"].copy(), d["m2"].copy()
        for k in self.group_draws:
            self.group_draws[k] = d[f"group_{k}"].copy()
        if self._n_hold and not self.spool_path.exists():
            raise SamplerError(
                f"The checkpoint's holdout draws file {str(self.spool_path)!r} is missing; "
                f"delete the checkpoint (or run without --resume) to start afresh.")
        self.open_spool(keep=True)

    @property
    def sd(self) -> np.ndarray:
        c = max(self.count[0] - 1, 1)
        return np.sqrt(self.m2 / c)


def spool_path_for(checkpoint: str | os.PathLike) -> Path:
    """Where a run with this checkpoint spools its holdout draws (``<name>.holdout_uI.f32``)."""
    ck = Path(checkpoint)
    return ck.with_name(ck.stem + ".holdout_uI.f32")


def _compile(backend, n_chains: int, log) -> float:
    """Compile (or load from numba's on-disk cache) the sweep before sampling; seconds.

    One sweep of every chain from throw-away seeds, after which the backend is
    put back as new (the driver re-initialises chains and random states), so the
    draws are those of a run without this step. Numba caches the compiled sweep
    on disk: only the first run after install compiles (about 30 s); JAX compiles
    in every new process. A message is printed if it takes more than a second.
    """
    if backend.name == "numpy":
        return 0.0
    msg = ("compiling the sampler (first run only)…" if backend.name == "numba"
           else "compiling the sampler…")
    timer = threading.Timer(1.0, lambda: log(msg))
    timer.daemon = True
    t0 = time.perf_counter()
    timer.start()
    try:
        backend.init(np.random.SeedSequence(2**31 - 1).spawn(n_chains))
        backend.run(1)
    finally:
        timer.cancel()
    backend.sweep = 0
    if isinstance(getattr(backend, "accepted", None), dict):
        backend.accepted = dict.fromkeys(backend.accepted, 0)
    return time.perf_counter() - t0


def _row_average_matrix(groups: np.ndarray, customers: np.ndarray, n_groups: int, n: int):
    """Sparse (G x n) matrix: row g averages uI over the rows of group g."""
    counts = np.bincount(groups, minlength=n_groups).astype(float)
    M = sp.csr_matrix((np.ones(groups.size), (groups, customers)), shape=(n_groups, n))
    return sp.diags(1.0 / np.maximum(counts, 1)) @ M


class PooledModel:
    """Hierarchical Bayesian model of repeated randomized experiments (docs/pooled.md).

    Parameters
    ----------
    n_chains : int, default=4
    n_warmup : int, default=1000
    n_draws : int, default=1000
        Retained draws per chain.
    thin : int, default=1
    random_state : int, default=0
    backend : {"auto", "numpy", "numba", "jax", "cpu", "gpu"}, default="auto"
        ``numpy``: the readable reference; ``cpu`` / ``numba``: the compiled two-pass CPU
        sweep on all cores; ``gpu``: JAX on a GPU; ``jax``: JAX on any device; ``auto``: JAX
        on a GPU when there is one, else the CPU path.
    spec : ModelSpec, default=None
        Priors (defaults of docs/pooled.md) and the parameter-expansion switch.
    features : ExposureFeatures, default=None
        Bin and decay options (defaults of docs/pooled.md).
    random_intercept : bool, default=True
        A customer random intercept u0_i next to uI_i and the covariate slopes
        (``u_i = (u0_i, uI_i, ubeta_i) ~ N(0, Omega)``).  Without it (the source study's
        specification) a customer's level that the covariates miss, and tau_i / 2 under
        effect coding, leak into uI_i whenever the treated share is not 1/2, inflating
        sigma_u (measured: +51% at 58-86% treated); see docs/pooled.md.
    holdout : bool, default=True
        Hold out one random row per customer with at least ``holdout_min_rows`` rows.
    holdout_min_rows : int, default=6
    checkpoint_every : int, default=250
    progress : bool, default=True
    max_functional_draws : int, default=400
        Retained draws (over all chains) kept for holdout functionals.
    devices : int, default=None
        Run the sharded JAX sweep over this many local devices
        (:class:`~manylift.sampler.sharding.ShardedJaxBackend`: customers split across
        them, sums all-reduced); None: ``backend`` decides.  On CPU, JAX shows N devices
        only if ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` was set before
        JAX started (``manylift fit --devices N`` sets it).
    dtype : {"float64", "float32"}, default="float64"
        Row storage of the JAX backends (``devices`` and several processes).

    Examples
    --------
    >>> from manylift.simulate.program import simulate_program
    >>> data, truth = simulate_program(300, 5, 12, random_state=0)
    >>> fit = PooledModel(n_chains=1, n_warmup=20, n_draws=20, backend="numpy",
    ...                   progress=False).fit(data)
    >>> fit.posterior.posterior["taubar"].shape
    (1, 20)
    """

    def __init__(self, n_chains: int = 4, n_warmup: int = 1000, n_draws: int = 1000,
                 thin: int = 1, random_state: int = 0, backend: str = "auto",
                 spec: ModelSpec | None = None, features: ExposureFeatures | None = None,
                 holdout: bool = True, holdout_min_rows: int = 6, checkpoint_every: int = 250,
                 progress: bool = True, max_functional_draws: int = 400,
                 random_intercept: bool = True, devices: int | None = None,
                 dtype: str = "float64"):
        self.n_chains = n_chains
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.thin = thin
        self.random_state = random_state
        self.backend = backend
        self.spec = spec
        self.features = features
        self.holdout = holdout
        self.holdout_min_rows = holdout_min_rows
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.max_functional_draws = max_functional_draws
        self.random_intercept = random_intercept
        self.devices = devices
        self.dtype = dtype

    def settings(self) -> SamplerSettings:
        return SamplerSettings(self.n_chains, self.n_warmup, self.n_draws, self.thin,
                               int(self.random_state), self.checkpoint_every)

    def fit(self, data: ExperimentData, *, checkpoint: str | os.PathLike | None = None,
            resume: bool = False, stop_after: int | None = None, log=print):
        """Fit the model; returns a :class:`~manylift.pooled.fit.PooledFit`.

        Parameters
        ----------
        data : ExperimentData
        checkpoint : path, default=None
            Checkpoint file (``.npz``) written every ``checkpoint_every`` sweeps; the
            holdout draws are spooled next to it (``<name>.holdout_uI.f32``).
        resume : bool, default=False
            Continue from ``checkpoint`` if it exists (same draws as an uninterrupted run).
        stop_after : int, default=None
            Stop after this many sweeps (testing resume); returns None.
        log : callable, default=print
            Where one-line stage messages go (the compile message).

        A fit over several processes, each with its share of whole customers, is
        :func:`manylift.pooled.distributed.fit_processes` (``model, data, comm``).

        The fit's ``timings`` hold the seconds of ``features`` (features, holdout
        split, design), ``compile`` (the sampler's compilation, 0 for numpy) and
        ``sampling`` (the sweeps alone: ``sampler.sweeps_per_second`` excludes
        compilation).
        """
        if not isinstance(data, ExperimentData):
            raise DataError(
                f"PooledModel.fit needs an ExperimentData (build it with "
                f"ExperimentData.from_frame(df) or from_files(path)); got {type(data).__name__}."
            )
        check_in("backend", self.backend, ["auto", "numpy", "numba", "jax", "cpu", "gpu"],
                 "PooledModel")
        check_in("dtype", self.dtype, ["float64", "float32"], "PooledModel")
        settings = self.settings()
        settings.validate()
        spec = self.spec or ModelSpec()
        t0 = time.perf_counter()
        inputs = build_inputs(data, holdout_min_rows=self.holdout_min_rows, holdout=self.holdout,
                              features=self.features, random_intercept=self.random_intercept,
                              random_state=self.random_state)
        design = inputs.design
        cal = ~inputs.holdout
        cust_cal = inputs.customer_index[cal]
        n = design.n_customers
        groups = {
            "all": _row_average_matrix(np.zeros(cust_cal.size, np.int64), cust_cal, 1, n),
            "campaign": _row_average_matrix(inputs.codes["campaign"][cal], cust_cal,
                                            len(inputs.levels["campaign"]), n),
            "week": _row_average_matrix(inputs.codes["week"][cal], cust_cal,
                                        len(inputs.levels["week"]), n),
        }
        t_features = time.perf_counter() - t0
        peak_features = peak_rss_gib()
        if self.devices is not None:
            from manylift._core.checks import check_positive_int
            from manylift.sampler.sharding import ShardedJaxBackend, make_mesh

            check_positive_int("devices", self.devices, "PooledModel")
            backend = ShardedJaxBackend(design, spec, settings.n_chains,
                                        mesh=make_mesh(self.devices), dtype=self.dtype)
        else:
            backend = get_backend(self.backend, design, spec, settings.n_chains)
        t_compile = _compile(backend, settings.n_chains, log)
        peak_compile = peak_rss_gib()
        hold_cust = inputs.customer_index[inputs.holdout]
        acc = StreamingCustomers(n, groups, hold_cust, settings.n_chains, settings.n_draws,
                                 self.max_functional_draws, design.ui_index,
                                 spool_path=None if checkpoint is None
                                 else spool_path_for(checkpoint))
        resuming = bool(resume and checkpoint is not None and os.path.exists(checkpoint))
        acc.open_spool(keep=resuming)
        try:
            run = run_sampler(backend, settings, on_draw=acc, accumulator=acc,
                              checkpoint=checkpoint, resume=resume, progress=self.progress,
                              stop_after=stop_after)
        except BaseException:
            acc.close_spool()
            raise
        if stop_after is not None and stop_after < settings.total_sweeps:
            acc.close_spool()
            return None
        acc.close_spool()
        # the spec the backend ran (the JAX backends drop the interweaving move they lack)
        fit = self.fit_class(model=self, data=data, inputs=inputs, run=run, customers=acc,
                             spec=getattr(backend, "spec", spec))
        fit.timings = {"features": t_features, "compile": t_compile, "sampling": run.seconds}
        fit.peak_rss_after = {"features": peak_features, "compile": peak_compile,
                              "sampling": peak_rss_gib()}
        return fit

    @property
    def fit_class(self):
        """The class of the fits this model returns (a subclass may return a richer one)."""
        from manylift.pooled.fit import PooledFit

        return PooledFit

    def __repr__(self) -> str:
        return (f"PooledModel(n_chains={self.n_chains}, n_warmup={self.n_warmup}, "
                f"n_draws={self.n_draws}, thin={self.thin}, random_state={self.random_state}, "
                f"backend={self.backend!r}, random_intercept={self.random_intercept}"
                + (f", devices={self.devices}" if self.devices is not None else "") + ")")
