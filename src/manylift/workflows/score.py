"""``manylift score``: score new rows with a fitted run and write the scores atomically."""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_score", "score_rows", "write_scores"]


def score_rows(fitted, rows, *, cost=None, margin: float = 1.0, n_draws: int | None = None,
               seed: int = 0, progress: bool = True):
    """The posterior of each new row's effect and the decision (a ``Scores``)."""
    return fitted.predict_effect(rows, cost=cost, margin=margin, n_draws=n_draws,
                                 random_state=seed, progress=progress)


def write_scores(scores, out, **summary_extra) -> Path:
    """``scores.parquet`` (one row per scored row) and ``scores.json`` (the summary) in
    ``out``, each written atomically."""
    from manylift._core.atomic import write_json
    from manylift.data.io import write_parquet

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "scores.parquet", scores.rows)
    write_json(out / "scores.json", {**scores.summary, **summary_extra})
    return out


def describe_scores(summary: dict) -> str:
    """One line: how many rows to target and their expected incremental value."""
    v = summary["incremental_value_targeted"]
    return (f"Target {summary['targeted']:,} of {summary['rows']:,} rows "
            f"({100 * summary['share_targeted']:.1f}%); expected incremental value of the "
            f"targeted rows {v['mean']:.4g} [{v['lo']:.4g}, {v['hi']:.4g}] (outcome units x "
            f"margin, net of cost, 95% interval).")


def run_score(run, new_rows, out, *, cost=None, margin: float = 1.0,
              n_draws: int | None = None, seed: int = 0, progress: bool = True,
              log=print) -> int:
    """The ``manylift score`` command: every argument already parsed by the CLI."""
    from manylift.data.io import read_table
    from manylift.pooled.scoring import load_run

    fitted = load_run(run)
    rows = read_table(new_rows)
    log(f"Scoring {len(rows):,} rows with {run} ({fitted.scoring.n_draws} draws kept)")
    scores = score_rows(fitted, rows, cost=cost, margin=margin, n_draws=n_draws, seed=seed,
                        progress=progress)
    write_scores(scores, out, run=str(run), new_rows=str(new_rows))
    log(describe_scores(scores.summary))
    log(f"Written to {out}/: scores.parquet, scores.json")
    return 0
