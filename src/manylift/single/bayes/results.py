"""Result objects of the Bayesian uplift models: posterior summaries of effects and uplift."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["OverallEffect", "SegmentEffects", "summarize_draws"]


def summarize_draws(draws: np.ndarray, breakeven: float | None = None) -> dict:
    """Posterior summary of 1-d draws: mean, sd, 10/90% and 2.5/97.5% quantiles."""
    q = np.quantile(draws, [0.025, 0.10, 0.90, 0.975])
    out = {
        "mean": float(np.mean(draws)),
        "sd": float(np.std(draws, ddof=1)) if draws.size > 1 else 0.0,
        "lo": float(q[0]),
        "q10": float(q[1]),
        "q90": float(q[2]),
        "hi": float(q[3]),
        "p_positive": float(np.mean(draws > 0)),
    }
    if breakeven is not None:
        out["p_breakeven"] = float(np.mean(draws > breakeven))
    return out


@dataclass(frozen=True, eq=False)
class OverallEffect:
    """The average effect over all rows, per posterior draw.

    Attributes
    ----------
    effect_draws : ndarray, shape (n_draws,)
        The treatment effect on the model scale (log-odds for a binary outcome,
        outcome units for the Gaussian family); for the hierarchical model the
        population mean ``mu_tau``.
    uplift_draws : ndarray, shape (n_draws,)
        Mean over all rows of the predicted treated-minus-control outcome
        (probability for a binary outcome), per draw.
    breakeven : float or None
        Uplift above which treating pays (``cost / margin``), if given.
    scale : str
        ``"log-odds"`` or ``"outcome units"``.
    """

    effect_draws: np.ndarray
    uplift_draws: np.ndarray
    breakeven: float | None = None
    scale: str = "log-odds"

    @property
    def effect(self) -> dict:
        return summarize_draws(self.effect_draws)

    @property
    def uplift(self) -> dict:
        return summarize_draws(self.uplift_draws, self.breakeven)

    @property
    def p_positive(self) -> float:
        return float(np.mean(self.uplift_draws > 0))

    def to_frame(self) -> pd.DataFrame:
        rows = {f"effect ({self.scale})": self.effect, "uplift": self.uplift}
        return pd.DataFrame(rows).T

    def __repr__(self) -> str:
        u = self.uplift
        return (
            f"OverallEffect(uplift={u['mean']:.4g} [95% {u['lo']:.4g}, {u['hi']:.4g}], "
            f"P(uplift>0)={u['p_positive']:.3f}, n_draws={self.uplift_draws.size})"
        )


@dataclass(frozen=True, eq=False)
class SegmentEffects:
    """Per-segment raw lift, counts and posterior effects.

    Attributes
    ----------
    segments : tuple of str
        Segment labels, sorted.
    n, n_treated, n_control : ndarray of int, shape (n_segments,)
        Row counts.
    raw_lift : ndarray, shape (n_segments,)
        Difference in mean outcome, treated minus control, within the segment
        (NaN where an arm is empty).
    effect_draws : ndarray, shape (n_segments, n_draws)
        Treatment effect on the model scale per segment and draw.
    uplift_draws : ndarray, shape (n_segments, n_draws)
        Mean over the segment's rows of the predicted treated-minus-control
        outcome, per draw.
    breakeven : float or None
        Uplift above which treating pays (``cost / margin``), if given.
    model : str
        ``"hierarchical"`` or ``"pooled"``.
    scale : str
        ``"log-odds"`` or ``"outcome units"``.
    """

    segments: tuple
    n: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    raw_lift: np.ndarray
    effect_draws: np.ndarray
    uplift_draws: np.ndarray
    breakeven: float | None = None
    model: str = "hierarchical"
    scale: str = "log-odds"

    def with_breakeven(self, breakeven: float | None) -> SegmentEffects:
        """The same effects with another breakeven uplift (for P(uplift > breakeven))."""
        from dataclasses import replace

        return replace(self, breakeven=None if breakeven is None else float(breakeven))

    @property
    def p_positive(self) -> np.ndarray:
        return np.mean(self.uplift_draws > 0, axis=1)

    @property
    def p_breakeven(self) -> np.ndarray | None:
        if self.breakeven is None:
            return None
        return np.mean(self.uplift_draws > self.breakeven, axis=1)

    def to_frame(self) -> pd.DataFrame:
        """One row per segment: counts, raw lift, effect and uplift summaries, probabilities."""
        recs = []
        for k, name in enumerate(self.segments):
            e = summarize_draws(self.effect_draws[k])
            u = summarize_draws(self.uplift_draws[k], self.breakeven)
            rec = {
                "segment": name,
                "n": int(self.n[k]),
                "n_treated": int(self.n_treated[k]),
                "n_control": int(self.n_control[k]),
                "raw_lift": float(self.raw_lift[k]),
                "effect_mean": e["mean"],
                "effect_q10": e["q10"],
                "effect_q90": e["q90"],
                "effect_lo": e["lo"],
                "effect_hi": e["hi"],
                "uplift_mean": u["mean"],
                "uplift_sd": u["sd"],
                "uplift_q10": u["q10"],
                "uplift_q90": u["q90"],
                "uplift_lo": u["lo"],
                "uplift_hi": u["hi"],
                "p_positive": u["p_positive"],
            }
            if self.breakeven is not None:
                rec["p_breakeven"] = u["p_breakeven"]
            recs.append(rec)
        return pd.DataFrame.from_records(recs)

    def __repr__(self) -> str:
        return (
            f"SegmentEffects(model={self.model!r}, n_segments={len(self.segments)}, "
            f"n_draws={self.uplift_draws.shape[1]}, breakeven={self.breakeven})\n"
            + self.to_frame()[["segment", "n", "raw_lift", "uplift_mean", "uplift_lo",
                               "uplift_hi", "p_positive"]].to_string(index=False)
        )
