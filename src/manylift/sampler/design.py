"""The pooled model's design as compact arrays, and its products without a dense N x K matrix.

The fixed part of DESIGN.md section 4 (App-4/App-7 of the source study) is

    F_ij = [dense columns (intercept, X, W, proportion treated, W x proportion treated),
            categorical terms (campaign, week, recency x stock cell, activity bin),
            each once as a baseline and once multiplied by W]

Every categorical term is an integer code per row with ``L`` levels and
sum-to-zero effect coding (``L - 1`` parameters; level ``L - 1`` gets minus
their sum).  We keep only the codes: ``F theta`` is a gather, ``F' r`` a
segment sum (bincount) followed by the small effect-coding matrix, and
``F' F`` is assembled once from co-occurrence counts.  With ``W`` coded
-1/2, +1/2, ``W^2 = 1/4`` is constant, which makes those counts cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manylift._core.errors import ModelError

__all__ = ["CategoricalTerm", "Design", "build_design", "effect_coding"]


def effect_coding(n_levels: int) -> np.ndarray:
    """``A`` (L x L-1): full level effects = ``A @ params``; they sum to zero."""
    A = np.zeros((n_levels, max(n_levels - 1, 0)))
    A[: n_levels - 1] = np.eye(n_levels - 1)
    A[n_levels - 1] = -1.0
    return A


@dataclass(frozen=True)
class CategoricalTerm:
    """A categorical block of F: ``codes`` in 0..n_levels-1, optionally times W."""

    name: str
    codes: np.ndarray
    n_levels: int
    times_w: bool


@dataclass(frozen=True, repr=False)
class Design:
    """Everything a sweep needs, as arrays (rows sorted by customer).

    Attributes
    ----------
    y : (N,) centred outcome
    customer : (N,) int customer index 0..n-1 (sorted)
    R : (N, q) random-coefficient design ``[W, X]`` (W in {-1/2, +1/2})
    dense : (N, d) dense columns of F
    codes : (N, B) int32 codes of the categorical terms
    n_levels, times_w : per term
    w : (N,) effect-coded treatment
    FtF : (K, K) precomputed
    RtR : (n, q, q) per-customer precomputed
    names : list of parameter names (length K)
    term_slices : dict term name -> slice of theta
    """

    y: np.ndarray
    customer: np.ndarray
    n_customers: int
    R: np.ndarray
    dense: np.ndarray
    dense_names: tuple[str, ...]
    codes: np.ndarray
    term_names: tuple[str, ...]
    n_levels: tuple[int, ...]
    times_w: tuple[bool, ...]
    w: np.ndarray
    FtF: np.ndarray
    RtR: np.ndarray
    names: tuple[str, ...]
    term_slices: dict

    @property
    def n_rows(self) -> int:
        return self.y.shape[0]

    @property
    def K(self) -> int:
        return self.FtF.shape[0]

    @property
    def q(self) -> int:
        return self.R.shape[1]

    def coding_matrices(self) -> list[np.ndarray]:
        return [effect_coding(L) for L in self.n_levels]

    def __repr__(self) -> str:
        return (f"Design(N={self.n_rows:,}, customers={self.n_customers:,}, K={self.K}, "
                f"q={self.q}, terms={dict(zip(self.term_names, self.n_levels, strict=True))})")

    # -- products (numpy reference) ------------------------------------
    def multiplier(self, b: int) -> np.ndarray | float:
        return self.w if self.times_w[b] else 1.0

    def F_dot(self, theta: np.ndarray) -> np.ndarray:
        """``F @ theta`` by gathers."""
        d = self.dense.shape[1]
        out = self.dense @ theta[:d]
        for b, A in enumerate(self.coding_matrices()):
            sl = self.term_slices[self.term_names[b]]
            full = A @ theta[sl]
            out = out + self.multiplier(b) * full[self.codes[:, b]]
        return out

    def Ft_dot(self, r: np.ndarray) -> np.ndarray:
        """``F' r`` by segment sums."""
        parts = [self.dense.T @ r]
        rw = r * self.w
        for b, A in enumerate(self.coding_matrices()):
            weights = rw if self.times_w[b] else r
            s = np.bincount(self.codes[:, b], weights=weights, minlength=self.n_levels[b])
            parts.append(A.T @ s)
        return np.concatenate(parts)


def _cooccurrence(a: np.ndarray, La: int, b: np.ndarray, Lb: int, weights) -> np.ndarray:
    key = a.astype(np.int64) * Lb + b
    return np.bincount(key, weights=weights, minlength=La * Lb).reshape(La, Lb)


def build_design(
    y: np.ndarray,
    customer: np.ndarray,
    n_customers: int,
    w: np.ndarray,
    X: np.ndarray,
    dense: np.ndarray,
    dense_names: list[str],
    terms: list[CategoricalTerm],
    covariate_names: list[str] | None = None,
) -> Design:
    """Assemble the design and precompute ``F'F`` and every ``R_i'R_i``.

    ``dense`` holds the dense columns of F (the caller includes the intercept,
    X, W and the continuous V columns with their W interactions).
    """
    N = y.shape[0]
    if np.any(np.diff(customer) < 0):
        raise ModelError("build_design needs rows sorted by customer.")
    R = np.column_stack([w, X])
    codes = np.column_stack([t.codes for t in terms]).astype(np.int32) if terms else \
        np.zeros((N, 0), np.int32)
    n_levels = tuple(int(t.n_levels) for t in terms)
    times_w = tuple(bool(t.times_w) for t in terms)
    As = [effect_coding(L) for L in n_levels]
    d = dense.shape[1]
    sizes = [d] + [L - 1 for L in n_levels]
    K = int(sum(sizes))
    FtF = np.zeros((K, K))
    offs = np.cumsum([0, *sizes])
    FtF[:d, :d] = dense.T @ dense
    mult = [w if tw else None for tw in times_w]
    for b in range(len(terms)):
        sb = slice(offs[b + 1], offs[b + 2])
        # dense x term b
        for k in range(d):
            wts = dense[:, k] * (mult[b] if mult[b] is not None else 1.0)
            s = np.bincount(codes[:, b], weights=wts, minlength=n_levels[b])
            FtF[k, sb] = As[b].T @ s
            FtF[sb, k] = FtF[k, sb]
        for c in range(b, len(terms)):
            sc = slice(offs[c + 1], offs[c + 2])
            if mult[b] is not None and mult[c] is not None:
                wts = mult[b] * mult[c]
            else:
                wts = mult[b] if mult[b] is not None else mult[c]
            M = _cooccurrence(codes[:, b], n_levels[b], codes[:, c], n_levels[c], wts)
            block = As[b].T @ M @ As[c]
            FtF[sb, sc] = block
            FtF[sc, sb] = block.T
    q = R.shape[1]
    RtR = np.zeros((n_customers, q, q))
    for a in range(q):
        for b2 in range(a, q):
            v = np.bincount(customer, weights=R[:, a] * R[:, b2], minlength=n_customers)
            RtR[:, a, b2] = v
            RtR[:, b2, a] = v
    names = list(dense_names)
    slices = {}
    for b, t in enumerate(terms):
        slices[t.name] = slice(int(offs[b + 1]), int(offs[b + 2]))
        names += [f"{t.name}[{k}]" for k in range(n_levels[b] - 1)]
    return Design(
        y=np.asarray(y, float), customer=np.asarray(customer, np.int64), n_customers=n_customers,
        R=R, dense=dense, dense_names=tuple(dense_names), codes=codes,
        term_names=tuple(t.name for t in terms), n_levels=n_levels, times_w=times_w,
        w=np.asarray(w, float), FtF=FtF, RtR=RtR, names=tuple(names), term_slices=slices,
    )
