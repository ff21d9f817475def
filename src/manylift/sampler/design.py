"""The pooled model's design as compact arrays, and its products without a dense N x K matrix.

The fixed part of docs/pooled.md (App-4/App-7 of the source study) is

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

__all__ = ["CategoricalTerm", "Design", "JointCells", "build_design", "effect_coding", "joint_cells"]


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
    R : (N, q) random-coefficient design ``[1, W, X]`` with the customer random intercept
        (the default), ``[W, X]`` without it (W in {-1/2, +1/2})
    r_names : names of R's columns (``u0``, ``uI``, then ``u[<covariate>]``)
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
    r_names: tuple[str, ...] = ()

    @property
    def ui_index(self) -> int:
        """Column of R (and coordinate of u_i) of the unobserved responsiveness uI_i."""
        return self.r_names.index("uI") if "uI" in self.r_names else 0

    @property
    def random_intercept(self) -> bool:
        return "u0" in self.r_names

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
    random_intercept: bool = False,
) -> Design:
    """Assemble the design and precompute ``F'F`` and every ``R_i'R_i``.

    ``dense`` holds the dense columns of F (the caller includes the intercept,
    X, W and the continuous V columns with their W interactions).  With
    ``random_intercept`` the customer effects are ``u_i = (u0_i, uI_i, ubeta_i)``,
    ``R = [1, W, X]``; without, ``u_i = (uI_i, ubeta_i)``, ``R = [W, X]`` (the source
    study's specification).
    """
    N = y.shape[0]
    if np.any(np.diff(customer) < 0):
        raise ModelError("build_design needs rows sorted by customer.")
    R = np.column_stack([np.ones(N), w, X] if random_intercept else [w, X])
    covs = list(covariate_names) if covariate_names is not None else [
        str(k) for k in range(X.shape[1] if X.ndim == 2 else 0)]
    r_names = (["u0"] if random_intercept else []) + ["uI"] + [f"u[{c}]" for c in covs]
    if len(r_names) != R.shape[1]:
        raise ModelError(f"build_design: {len(covs)} covariate names for {R.shape[1]} columns "
                         f"of R.")
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
        r_names=tuple(r_names),
    )


# ---------------------------------------------------------------------------
# joint cells: the categorical part of F as a few gathers per row
# ---------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class JointCells:
    """The categorical columns of F as a few joint codes per row (see :func:`joint_cells`).

    Attributes
    ----------
    columns : per distinct code column, ``(n_levels, base_start, w_start)``: the first
        index in theta of its baseline and of its W-interaction parameters (-1 if absent)
    groups : per group, the indices into ``columns`` that share one joint code
    cells : (G, N) int32, per group ``2 * joint code + treated`` (0 .. 2 n_joint - 1)
    members : per group, (m_g, n_joint_g) int32: each member column's level at each joint code
    """

    columns: tuple[tuple[int, int, int], ...]
    groups: tuple[tuple[int, ...], ...]
    cells: np.ndarray
    members: tuple[np.ndarray, ...]

    @property
    def n_joint(self) -> tuple[int, ...]:
        return tuple(int(m.shape[1]) for m in self.members)

    @property
    def cell_offsets(self) -> np.ndarray:
        """Start of each group's cells in one table of all cells (length G + 1)."""
        return np.concatenate([[0], np.cumsum([2 * j for j in self.n_joint])]).astype(np.int64)

    def cell_matrix(self, K: int):
        """The categorical part of F per cell: a sparse ``(total cells, K)`` matrix.

        Every row of a cell has the same categorical part of ``F`` (the codes and the
        arm are the cell), so ``F_cat theta = (M theta)[cell]`` and ``F_cat' r =
        M' (sum of r per cell)``.  Dense columns of F get zero columns.
        """
        from scipy.sparse import coo_matrix

        rows, cols, vals = [], [], []
        for off, grp, lv in zip(self.cell_offsets, self.groups, self.members, strict=False):
            nj = lv.shape[1]
            for i, ci in enumerate(grp):
                L, b0, w0 = self.columns[ci]
                lev = lv[i].astype(np.int64)
                last = lev == L - 1
                for start, arm_coef in ((b0, (1.0, 1.0)), (w0, (-0.5, 0.5))):
                    if start < 0:
                        continue
                    for t in (0, 1):
                        r = off + 2 * np.arange(nj) + t
                        rows += [r[~last], np.repeat(r[last], L - 1)]
                        cols += [start + lev[~last], np.tile(start + np.arange(L - 1),
                                                              int(last.sum()))]
                        vals += [np.full((~last).sum(), arm_coef[t]),
                                 np.full(int(last.sum()) * (L - 1), -arm_coef[t])]
        total = int(self.cell_offsets[-1])
        if not rows:
            return coo_matrix((total, K)).tocsr()
        return coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(total, K)).tocsr()


def combined_key(cols: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One int64 key per row for the combination of several code columns (mixed radix)."""
    key = np.zeros(cols[0].shape[0], np.int64)
    for c, L in zip(cols, sizes, strict=True):
        key = key * L + c
    return key


def key_levels(used: np.ndarray, sizes: list[int]) -> np.ndarray:
    """The code columns' levels (m, len(used)) of the combined keys ``used``."""
    levels = np.empty((len(sizes), used.size), np.int64)
    rest = used.copy()
    for i in reversed(range(len(sizes))):
        rest, levels[i] = np.divmod(rest, sizes[i])
    return levels


def _joint_codes(cols: list[np.ndarray], sizes: list[int]):
    """Joint code of several code columns over the combinations that occur.

    Returns ``(joint (N,) int64, levels (m, n_joint) int64)``.
    """
    key = combined_key(cols, sizes)
    total = int(np.prod(sizes, dtype=np.float64))
    if total <= 50_000_000:
        used = np.flatnonzero(np.bincount(key, minlength=total))
        lut = np.full(total, -1, np.int64)
        lut[used] = np.arange(used.size)
        joint = lut[key]
    else:  # pragma: no cover - huge level counts
        used, joint = np.unique(key, return_inverse=True)
    return joint, key_levels(used, sizes)


def joint_cells(design: Design, max_joint_cells: int = 1 << 16) -> JointCells:
    """Merge the categorical code columns into a few joint codes per row.

    Code columns that are identical across terms (a categorical baseline and its
    interaction with W) are kept once.  Then consecutive columns are merged into one
    joint code while (occurring combinations x 2 arms) stay within ``max_joint_cells``:
    campaign x week are the interventions, recency-stock cell x activity bin a small
    table.  A row's categorical part of ``F theta`` is then one lookup per group in a
    table of (joint code, arm) values, and ``F' r`` one segment sum per group.  Needs W
    effect-coded as -1/2, +1/2 (docs/pooled.md), so that the arm fixes W.
    """
    return joint_layout(design, max_joint_cells, same_column=lambda same: same,
                        joint_codes=_joint_codes)


def joint_layout(design: Design, max_joint_cells: int, *, same_column, joint_codes) -> JointCells:
    """The layout of :func:`joint_cells` with its two data-dependent decisions supplied.

    ``same_column(same: bool) -> bool``: whether two code columns are to be kept once,
    given whether they are identical here; ``joint_codes(cols, sizes) -> (joint, levels)``:
    the joint codes of merged columns and the level combinations they stand for (sorted).
    A fit over several processes makes both decisions global
    (:func:`manylift.sampler.sharding.global_joint_cells`).
    """
    if design.w.size and not np.all(np.abs(np.abs(design.w) - 0.5) < 1e-12):
        raise ModelError("The joint-cell layout needs the treatment effect-coded as -1/2, +1/2 "
                         "(docs/pooled.md); build the design with build_design.")
    treated = design.w > 0
    columns: list[list[int]] = []  # [n_levels, base_start, w_start]
    col_index: list[int] = []  # distinct column -> design code column
    for b in range(design.codes.shape[1]):
        found = -1
        for k, ci in enumerate(col_index):
            if same_column(design.n_levels[b] == design.n_levels[ci]
                           and np.array_equal(design.codes[:, b], design.codes[:, ci])):
                found = k
                break
        sl = design.term_slices[design.term_names[b]]
        slot = 2 if design.times_w[b] else 1
        if found >= 0 and columns[found][slot] == -1:
            columns[found][slot] = sl.start
        else:
            col_index.append(b)
            entry = [design.n_levels[b], -1, -1]
            entry[slot] = sl.start
            columns.append(entry)

    def joint(members):
        return joint_codes([design.codes[:, col_index[i]] for i in members],
                           [columns[i][0] for i in members])

    # greedy grouping of consecutive distinct columns into joint codes
    groups: list[list[int]] = []
    joints: list[tuple[np.ndarray, np.ndarray]] = []
    for k in range(len(columns)):
        if groups:
            members = groups[-1] + [k]
            jl = joint(members)
            if 2 * jl[1].shape[1] <= max_joint_cells:
                groups[-1], joints[-1] = members, jl
                continue
        groups.append([k])
        joints.append(joint([k]))
    cells = (np.stack([2 * j + treated for j, _ in joints]).astype(np.int32) if joints
             else np.zeros((0, design.n_rows), np.int32))
    return JointCells(
        columns=tuple(tuple(int(v) for v in c) for c in columns),
        groups=tuple(tuple(g) for g in groups), cells=cells,
        members=tuple(lv.astype(np.int32) for _, lv in joints))
