"""``manylift fit``: read and validate the exposures, fit the pooled model, analyse, save."""

from __future__ import annotations

import time
from pathlib import Path

from manylift.workflows.pooled import Stages, finish_after_sampling, print_results, print_summary

__all__ = ["fit_and_analyse", "run_fit"]


def fit_and_analyse(data, model, out: str | Path, *, resume: bool = False, stages=None,
                    log=print, extra: dict | None = None):
    """Fit ``model`` to ``data`` with a checkpoint in ``out``, then :func:`analyse` it.

    Returns ``(fit, results)``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = stages or Stages(log)
    ck = out / "checkpoint.npz"
    if resume and not ck.exists():
        log(f"--resume: no checkpoint at {ck}; starting a fresh run.")
        resume = False
    elif resume:
        log(f"--resume: continuing from {ck}.")
    fit = model.fit(data, checkpoint=ck, resume=resume, log=log)
    for w in fit.convergence_warnings():
        log(f"warning: {w}")
    results = finish_after_sampling(fit, out, ck, seed=model.random_state, stages=st,
                                    progress=model.progress, log=log, extra=extra)
    return fit, results


def run_fit(exposures, campaigns, out, *, data_kwargs: dict, drop_incomplete: bool = False,
            model_kwargs: dict, resume: bool = False, log=print, describe=None) -> int:
    """The ``manylift fit`` command: every argument already parsed by the CLI.

    ``describe(data) -> str``: the CLI's one-line account of the covariates, printed
    after the data summary.
    """
    from manylift.data.experiment import ExperimentData
    from manylift.workflows.api import PooledModel

    st = Stages(log)
    t = time.perf_counter()
    data = ExperimentData.from_files(exposures, campaigns, **data_kwargs,
                                     drop_incomplete_interventions=drop_incomplete)
    st.add("read_validate", time.perf_counter() - t, "reading and validating the data")
    log(str(data))
    if describe is not None:
        log(describe(data))
    fit, _ = fit_and_analyse(data, PooledModel(**model_kwargs), out, resume=resume, stages=st,
                             log=log)
    print_summary(fit)
    print_results(Path(out))
    log(f"Results written to {out}/ (results.json, customers.parquet, posterior.nc, scoring "
        f"model); report: {Path(out) / 'report.html'}")
    return 0
