"""Off-policy value of a targeting policy from randomized (or known-propensity) data.

A policy assigns each unit to treatment (``assignment`` = 1) or control (0), or
treats it with a probability in [0, 1]. Its value is the mean outcome if the
policy had been followed, estimated from units whose actual assignment agrees
with it:

    IPW   V = mean_i [ pi_i W_i y_i / e_i + (1 - pi_i)(1 - W_i) y_i / (1 - e_i) ]
          (for a 0/1 policy: mean of 1{pi_i = W_i} y_i / P(W_i | e_i))
    AIPW  V = mean_i [ pi_i Gamma1_i + (1 - pi_i) Gamma0_i ],
          Gamma1 = mu1 + W (y - mu1) / e,  Gamma0 = mu0 + (1 - W)(y - mu0) / (1 - e)

With several arms (integer codes 0..K-1) the same holds with one term per arm:
V = mean_i sum_k pi_ik Gamma_ik, Gamma_ik = 1{A_i = k} y_i / e_ik (IPW) or
mu_ik + 1{A_i = k}(y_i - mu_ik) / e_ik (AIPW).

The company's policy "as randomized" is the stochastic policy ``assignment =
propensity`` (its IPW value is exactly the mean outcome); never pass the
realised treatment as a 0/1 policy, since a policy must not depend on it.

Standard errors come from the bootstrap (fixed ``random_state``); with
``n_bootstrap=0`` the analytic sd / sqrt(n) is reported instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manylift._core.checks import as_1d_float, check_in
from manylift._core.errors import DataError, ModelError
from manylift._core.rng import as_generator
from manylift.evaluation._bootstrap import BOOTSTRAP_KINDS, bootstrap_counts, cluster_codes
from manylift.evaluation._checks import (
    check_arm,
    check_arm_matrix,
    check_assignment,
    check_groups,
    check_n_bootstrap,
    check_outcome,
    check_priorities,
    check_propensity,
    check_treatment,
    check_weights,
)
from manylift.evaluation._policy_kernels import group_sums
from manylift.evaluation._results import fmt, normal_interval
from manylift.evaluation.scores import check_arm_propensity

__all__ = [
    "PolicyComparison",
    "PolicyValueResult",
    "compare_policies_many",
    "random_assignment",
    "policy_value",
    "policy_value_many",
    "multiarm_policy_value",
]

_METHODS = ("ipw", "aipw")
_CHUNK_ELEMENTS = 2**21


@dataclass(frozen=True, eq=False)
class PolicyValueResult:
    """Estimated value of a policy (mean outcome per unit under the policy).

    Attributes
    ----------
    estimate : float
        Policy value, in outcome units per unit.
    std_err : float
        Bootstrap standard error (analytic sd / sqrt(n) when ``n_bootstrap=0``).
    method : {"ipw", "aipw"}
    share_treated : float
        Share of units the policy treats (any non-control arm).
    n : int
    n_bootstrap : int
    difference : float or None
        ``estimate`` minus the value of the ``versus`` policy, when one was given.
    difference_std_err : float or None
        Its standard error, from the same (paired) bootstrap replicates.
    arm_shares : tuple of float or None
        Share assigned to each arm (multi-arm policies only).
    """

    estimate: float
    std_err: float
    method: str
    share_treated: float
    n: int
    n_bootstrap: int
    difference: float | None = None
    difference_std_err: float | None = None
    arm_shares: tuple[float, ...] | None = None

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Normal-approximation confidence interval of the value."""
        return normal_interval(self.estimate, self.std_err, level)

    def difference_ci(self, level: float = 0.95) -> tuple[float, float]:
        if self.difference is None:
            raise ModelError("No 'versus' policy was given, so there is no difference to bound.")
        return normal_interval(self.difference, self.difference_std_err, level)

    def to_dict(self) -> dict:
        """Plain numbers for results.json: ``{value, se, lo, hi, method, share_treated, n}``
        plus ``difference, difference_se`` (and ``arm_shares``) when present."""
        lo, hi = self.ci()
        out = {
            "value": self.estimate,
            "se": self.std_err,
            "lo": lo,
            "hi": hi,
            "method": self.method,
            "share_treated": self.share_treated,
            "n": self.n,
        }
        if self.difference is not None:
            out["difference"] = self.difference
            out["difference_se"] = self.difference_std_err
        if self.arm_shares is not None:
            out["arm_shares"] = list(self.arm_shares)
        return out

    def to_frame(self):
        """One-row DataFrame: estimate, std_err, lo, hi (95%), method, share_treated, n
        (and difference, difference_std_err when a ``versus`` policy was given)."""
        import pandas as pd

        lo, hi = self.ci()
        row = {
            "estimate": self.estimate,
            "std_err": self.std_err,
            "lo": lo,
            "hi": hi,
            "method": self.method,
            "share_treated": self.share_treated,
            "n": self.n,
        }
        if self.difference is not None:
            row["difference"] = self.difference
            row["difference_std_err"] = self.difference_std_err
        return pd.DataFrame([row])

    def __repr__(self) -> str:
        lo, hi = self.ci()
        diff = ""
        if self.difference is not None:
            diff = f", difference={fmt(self.difference)} (se {fmt(self.difference_std_err)})"
        return (
            f"PolicyValueResult(method={self.method!r}, estimate={fmt(self.estimate)}, "
            f"std_err={fmt(self.std_err)}, 95% CI=[{fmt(lo)}, {fmt(hi)}], "
            f"share_treated={fmt(self.share_treated, 3)}, n={self.n}{diff})"
        )


def policy_value(
    outcome,
    treatment,
    propensity,
    assignment,
    mu0=None,
    mu1=None,
    method: str = "ipw",
    n_bootstrap: int = 200,
    random_state=0,
    *,
    versus=None,
    bootstrap: str = "ordinary",
    clusters=None,
) -> PolicyValueResult:
    """Value of a binary treatment policy by IPW or AIPW, with a bootstrap SE.

    Parameters
    ----------
    outcome : array-like of shape (n,)
    treatment : array-like of shape (n,)
        Actual 0/1 assignment.
    propensity : float or array-like of shape (n,)
        P(treatment = 1) in the data, strictly inside (0, 1).
    assignment : array-like of shape (n,)
        The policy: bool or 0/1 (treat = 1), or a treatment probability in [0, 1].
        The company's randomized policy is ``assignment=propensity``.
    mu0, mu1 : array-like of shape (n,), optional
        Outcome-model predictions under control and treatment; needed for
        ``method="aipw"``.
    method : {"ipw", "aipw"}, default="ipw"
    n_bootstrap : int, default=200
        Bootstrap replicates; 0 reports the analytic standard error instead.
    random_state : int, Generator or None, default=0
    versus : array-like of shape (n,), optional
        A second policy (e.g. the company's, or treat-all); the result then also
        holds the difference in value with a paired standard error.
    bootstrap : {"ordinary", "half"}, default="ordinary"
    clusters : array-like of shape (n,), optional
        Cluster labels; the bootstrap resamples whole clusters.

    Returns
    -------
    PolicyValueResult

    References
    ----------
    Dudik, M., Langford, J. and Li, L. (2011). Doubly robust policy evaluation and
    learning. ICML. Athey, S. and Wager, S. (2021). Policy learning with
    observational data. Econometrica 89(1), 133-161.

    Examples
    --------
    >>> y = np.array([5.0, 1.0, 2.0, 2.0]); w = np.array([1, 0, 1, 0])
    >>> policy_value(y, w, 0.5, assignment=[1, 1, 0, 0], n_bootstrap=0).estimate
    3.5
    """
    check_in("method", method, _METHODS, "policy_value")
    y = check_outcome(outcome)
    n = y.size
    w = check_treatment(treatment, n)
    e = check_propensity(propensity, n)
    pi = check_assignment(assignment, n)
    gamma0, gamma1 = _binary_gammas(y, w, e, mu0, mu1, method, "policy_value")
    value = _values(pi[None, :], gamma0, gamma1)[0]
    contributions = pi * gamma1 + (1 - pi) * gamma0
    other = None
    if versus is not None:
        pi_versus = check_assignment(versus, n, "versus")
        other = pi_versus * gamma1 + (1 - pi_versus) * gamma0
    return _result(
        value,
        contributions,
        other,
        method,
        float(pi.mean()),
        n_bootstrap,
        random_state,
        bootstrap,
        clusters,
        "policy_value",
    )


def policy_value_many(
    outcome, treatment, propensity, assignments, mu0=None, mu1=None, *, weights=None
) -> np.ndarray:
    """Values of D binary policies at once (IPW, or AIPW when mu0 and mu1 are given).

    Parameters
    ----------
    outcome, treatment, propensity, mu0, mu1
        As in :func:`policy_value`.
    assignments : array-like of shape (D, n)
        One policy per row: bool/0-1 or treatment probabilities.
    weights : array-like of shape (D, n) or (n,), optional
        Positive unit weights (e.g. one Bayesian-bootstrap draw per row,
        :func:`bayesian_bootstrap_weights`): the value is then the weighted mean
        of the per-unit contributions.

    Returns
    -------
    ndarray of shape (D,)
        Without weights element d equals ``policy_value(..., assignments[d], ...).estimate``
        exactly.

    Examples
    --------
    >>> y = np.array([5.0, 1.0, 2.0, 2.0]); w = np.array([1, 0, 1, 0])
    >>> policy_value_many(y, w, 0.5, [[1, 1, 0, 0], [1, 1, 1, 1]]).tolist()
    [3.5, 3.5]
    """
    y = check_outcome(outcome)
    n = y.size
    w = check_treatment(treatment, n)
    e = check_propensity(propensity, n)
    method = "ipw" if mu0 is None and mu1 is None else "aipw"
    gamma0, gamma1 = _binary_gammas(y, w, e, mu0, mu1, method, "policy_value_many")
    pis = check_priorities(assignments, n, "assignments")
    bad = (pis < 0) | (pis > 1)
    if bad.any():
        raise DataError(
            f"'assignments' must be 0/1 or treatment probabilities in [0, 1]; got "
            f"{int(bad.sum())} value(s) outside [0, 1] in row(s) "
            f"{np.unique(np.nonzero(bad)[0])[:5].tolist()}."
        )
    w = None if weights is None else check_weights(weights, pis.shape[0], n)
    out = np.empty(pis.shape[0])
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, pis.shape[0], step):
        block = pis[start : start + step]
        if w is None:
            out[start : start + step] = _values(block, gamma0, gamma1)
        else:
            wb = w[start : start + step]
            out[start : start + step] = (np.sum(wb * (block * gamma1 + (1 - block) * gamma0),
                                                axis=1) / wb.sum(axis=1))
    return out


@dataclass(frozen=True, eq=False)
class PolicyComparison:
    """Values per draw of the company's, the model's and a random policy (see
    :func:`compare_policies_many`). Every array has shape (D,).

    Attributes
    ----------
    value, net_value : dict
        ``{"company", "random", "model"}`` -> IPW value per unit, and the value
        minus the mean cost of the units treated (outcome units per unit).
    share_targeted : dict
        Share of units each policy treats (company: the mean propensity).
    """

    value: dict
    net_value: dict
    share_targeted: dict


def random_assignment(model, groups) -> np.ndarray:
    """Treatment probability k_g / n_g within each group, per row of ``model``.

    The random policy treats as many units as ``model`` within each group,
    chosen uniformly; the IPW value is linear in the assignment, so its
    expectation over all such random choices is the value of this probability
    assignment exactly (the limit of averaging over many random draws).

    Examples
    --------
    >>> random_assignment([[1, 0, 0, 1]], groups=[0, 0, 0, 1]).tolist()
    [[0.3333333333333333, 0.3333333333333333, 0.3333333333333333, 1.0]]
    """
    model = np.atleast_2d(np.asarray(model, dtype=float))
    codes, n_groups = check_groups(groups, model.shape[1])
    n_g = np.bincount(codes, minlength=n_groups).astype(float)
    k = np.zeros((model.shape[0], n_groups))
    for d in range(model.shape[0]):
        k[d] = np.bincount(codes, weights=model[d], minlength=n_groups)
    return (k / n_g)[:, codes]


def compare_policies_many(outcome, treatment, propensity, priorities, *, cost=None,
                          groups=None, weights=None, mu=None,
                          policies=("company", "random", "model"), subsets=None):
    """IPW (or AIPW) values of three policies per priority vector (e.g. per posterior draw).

    - *company*: as randomized (assignment = propensity), whose IPW value is
      the (weighted) mean outcome exactly;
    - *model*: treat when the priority exceeds the cost (0 without costs);
    - *random*: as many units as the model within each group (e.g. the
      intervention), chosen uniformly (:func:`random_assignment`), valued exactly
      as its expectation over the random choices.

    One compiled pass over the units per draw sums, per group, what every value
    needs; subsets of groups then cost nothing more.

    Parameters
    ----------
    outcome, treatment, propensity : array-like of shape (n,)
    priorities : array-like of shape (D, n)
        Predicted effects (outcome units), one vector per draw.
    cost : float or array-like of shape (n,), optional
        Cost of treating each unit, in outcome units.
    groups : array-like of shape (n,), optional
        Strata within which the random policy matches the model's count
        (default: one stratum).
    weights : array-like of shape (D, n), optional
        Unit weights per draw (a Bayesian-bootstrap draw each,
        :func:`bayesian_bootstrap_weights`), shared by the three policies of a
        draw so that their differences are paired.
    mu : array-like of shape (n,), optional
        An outcome prediction shared by both arms, fitted on other data (e.g. the
        mean outcome of the unit's stratum in a calibration sample): the values
        are then AIPW with mu0 = mu1 = mu, i.e. IPW of the outcome centred at mu
        (unbiased like IPW, with far less variance when outcomes sit far from 0).
        The company's value is the (weighted) mean outcome either way.
    policies : sequence of str, default=("company", "random", "model")
        Which policies to report (the others are absent from the result).
    subsets : dict, optional
        ``{name: bool mask of shape (n,)}``: also evaluate on these units (weights
        renormalised on them); each must be a union of ``groups``.

    Returns
    -------
    PolicyComparison, or ``{name: PolicyComparison}`` when ``subsets`` is given.

    Examples
    --------
    >>> y = np.array([5.0, 1.0, 2.0, 2.0]); w = np.array([1, 0, 1, 0])
    >>> r = compare_policies_many(y, w, 0.5, [[1.0, 1.0, -1.0, -1.0]])
    >>> float(r.value["company"][0]), float(r.value["model"][0])
    (2.5, 3.5)
    """
    y = check_outcome(outcome)
    n = y.size
    t = check_treatment(treatment, n)
    e = check_propensity(propensity, n)
    tau = check_priorities(priorities, n, "priorities", keep_float32=True)
    D = tau.shape[0]
    c = np.zeros(n) if cost is None else _broadcast("cost", cost, n)
    w = None if weights is None else check_weights(weights, D, n)
    if mu is None:
        gamma0, gamma1 = _binary_gammas(y, t, e, None, None, "ipw", "compare_policies_many")
    else:
        gamma0, gamma1 = _binary_gammas(y, t, e, mu, mu, "aipw", "compare_policies_many")
    for name in policies:
        check_in("policies", name, ("company", "random", "model"), "compare_policies_many")
    codes, n_groups = (np.zeros(n, np.intp), 1) if groups is None else check_groups(groups, n)
    sums = group_sums(tau, c, w, gamma0, gamma1 - gamma0, y, e * c, codes, n_groups)
    n_g = np.bincount(codes, minlength=n_groups).astype(float)
    e_g = np.bincount(codes, weights=e, minlength=n_groups)
    frac = sums[:, :, 4] / n_g  # the random policy's treatment probability in each group

    masks = {None: np.ones(n, bool)} if subsets is None else subsets
    member = np.zeros((n_groups, len(masks)))  # group x subset membership
    for k, (name, mask) in enumerate(masks.items()):
        inside = np.bincount(codes, weights=np.asarray(mask, bool).astype(float),
                             minlength=n_groups)
        split = (inside > 0) & (inside < n_g)
        if split.any():
            raise DataError(
                f"Subset {name!r} splits {int(split.sum())} group(s) of 'groups' (e.g. group "
                f"{int(np.flatnonzero(split)[0])}): a subset must hold whole groups, since the "
                f"random policy matches the model's count within each group.")
        member[:, k] = inside > 0
    S = np.einsum("dgk,gs->dsk", sums, member)  # (D, subsets, N_SUMS)
    rand_lift = (frac * sums[:, :, 5]) @ member  # (D, subsets)
    rand_cost = (frac * sums[:, :, 6]) @ member
    n_s, e_s = n_g @ member, e_g @ member
    out = {}
    for k, name in enumerate(masks):
        W = S[:, k, 0]
        value = {"company": S[:, k, 7] / W, "model": (S[:, k, 1] + S[:, k, 2]) / W,
                 "random": (S[:, k, 1] + rand_lift[:, k]) / W}
        net = {"company": value["company"] - S[:, k, 8] / W,
               "model": value["model"] - S[:, k, 3] / W,
               "random": value["random"] - rand_cost[:, k] / W}
        share_model = S[:, k, 4] / n_s[k]
        share = {"company": np.full(D, e_s[k] / n_s[k]), "model": share_model,
                 "random": share_model}
        out[name] = PolicyComparison({p: value[p] for p in policies},
                                     {p: net[p] for p in policies},
                                     {p: share[p] for p in policies})
    return out[None] if subsets is None else out


def multiarm_policy_value(
    outcome,
    arm,
    propensity,
    assignment,
    mu=None,
    method: str = "ipw",
    n_bootstrap: int = 200,
    random_state=0,
    *,
    versus=None,
    bootstrap: str = "ordinary",
    clusters=None,
) -> PolicyValueResult:
    """Value of assigning arm ``assignment[i]`` to unit i, by IPW or AIPW.

    Parameters
    ----------
    outcome : array-like of shape (n,)
    arm : array-like of shape (n,)
        Actual arm, integer codes 0..K-1 (0 = control).
    propensity : array-like of shape (n, K) or (K,)
        P(arm = k) per row (rows sum to 1), or one vector for all rows.
    assignment : array-like of shape (n,) or (n, K)
        The policy: an arm code per unit, or per-unit arm probabilities.
    mu : array-like of shape (n, K), optional
        Outcome-model predictions per arm; needed for ``method="aipw"``.
    method : {"ipw", "aipw"}, default="ipw"
    n_bootstrap, random_state, versus, bootstrap, clusters
        As in :func:`policy_value` (``versus`` in the same form as ``assignment``).

    Returns
    -------
    PolicyValueResult
        ``share_treated`` is the share assigned to a non-control arm and
        ``arm_shares`` the share per arm. With two arms the value equals
        :func:`policy_value`'s.

    References
    ----------
    Dudik, M., Langford, J. and Li, L. (2011). Doubly robust policy evaluation and
    learning. ICML. Zhou, Z., Athey, S. and Wager, S. (2023). Offline multi-action
    policy learning. Operations Research 71(1), 148-183.

    Examples
    --------
    >>> y = np.array([4.0, 2.0, 1.0])
    >>> r = multiarm_policy_value(y, [2, 1, 0], [0.5, 0.25, 0.25], [2, 2, 2], n_bootstrap=0)
    >>> r.estimate
    5.333333333333333
    """
    check_in("method", method, _METHODS, "multiarm_policy_value")
    y = check_outcome(outcome)
    n = y.size
    e = check_arm_matrix(propensity, n, "propensity")
    n_arms = e.shape[1]
    a = check_arm(arm, n=n, n_arms=n_arms)
    check_arm_propensity(e)
    rows = np.arange(n)
    observed = np.zeros((n, n_arms))
    observed[rows, a] = 1.0
    if method == "ipw":
        if mu is not None:
            raise ModelError(
                "'mu' was given but method='ipw' ignores it; pass method='aipw' to use the "
                "outcome model, or drop 'mu'."
            )
        gamma = observed * (y[:, None] / e)
    else:
        if mu is None:
            raise ModelError(
                "method='aipw' needs the outcome-model predictions 'mu' (shape (n, K)); pass "
                "them or use method='ipw'."
            )
        m = check_arm_matrix(mu, n, "mu", n_arms=n_arms)
        gamma = m + observed * ((y[:, None] - m) / e)
    pi = _arm_assignment(assignment, n, n_arms, "assignment")
    contributions = np.sum(pi * gamma, axis=1)
    other = None
    if versus is not None:
        other = np.sum(_arm_assignment(versus, n, n_arms, "versus") * gamma, axis=1)
    shares = pi.mean(axis=0)
    result = _result(
        float(np.mean(contributions)),
        contributions,
        other,
        method,
        float(1 - shares[0]),
        n_bootstrap,
        random_state,
        bootstrap,
        clusters,
        "multiarm_policy_value",
    )
    return PolicyValueResult(**{**result.__dict__, "arm_shares": tuple(float(s) for s in shares)})


# -- internals ---------------------------------------------------------------


def _binary_gammas(y, w, e, mu0, mu1, method, where):
    if method == "ipw":
        if mu0 is not None or mu1 is not None:
            raise ModelError(
                f"'mu0'/'mu1' were given but method='ipw' in {where} ignores them; pass "
                f"method='aipw' to use the outcome model, or drop them."
            )
        return (1 - w) * y / (1 - e), w * y / e
    if mu0 is None or mu1 is None:
        raise ModelError(
            f"method='aipw' in {where} needs both outcome-model predictions 'mu0' and 'mu1'; "
            f"pass them or use method='ipw'."
        )
    m0 = _broadcast("mu0", mu0, y.size)
    m1 = _broadcast("mu1", mu1, y.size)
    return m0 + (1 - w) * (y - m0) / (1 - e), m1 + w * (y - m1) / e


def _broadcast(name, values, n):
    if np.ndim(values) == 0:
        values = np.full(n, float(values))
    return as_1d_float(name, values, n=n)


def _values(pis: np.ndarray, gamma0: np.ndarray, gamma1: np.ndarray) -> np.ndarray:
    """Row means of pi * Gamma1 + (1 - pi) * Gamma0 (row-wise, so exact for any D)."""
    return np.mean(pis * gamma1 + (1 - pis) * gamma0, axis=1)


def _arm_assignment(assignment, n, n_arms, name):
    arr = np.asarray(assignment)
    if arr.ndim == 2:
        pi = check_arm_matrix(arr, n, name, n_arms=n_arms)
        if (pi < 0).any() or np.any(np.abs(pi.sum(axis=1) - 1) > 1e-6):
            raise DataError(
                f"{name!r} as a matrix must hold arm probabilities: non-negative, each row "
                f"summing to 1 (control in column 0)."
            )
        return pi
    codes = check_arm(arr, n=n, n_arms=n_arms, name=name)
    pi = np.zeros((n, n_arms))
    pi[np.arange(n), codes] = 1.0
    return pi


def _result(
    value,
    contributions,
    other,
    method,
    share,
    n_bootstrap,
    random_state,
    bootstrap,
    clusters,
    where,
) -> PolicyValueResult:
    n_bootstrap = check_n_bootstrap(n_bootstrap, where)
    check_in("bootstrap", bootstrap, BOOTSTRAP_KINDS, where)
    n = contributions.size
    diff = None if other is None else contributions - other
    if n_bootstrap:
        codes, n_clusters = cluster_codes(clusters, n)
        rng = as_generator(random_state)
        reps = np.empty(n_bootstrap)
        diff_reps = np.empty(n_bootstrap)
        counts = bootstrap_counts(
            n, n_bootstrap, rng, kind=bootstrap, clusters=codes, n_clusters=n_clusters
        )
        for b, count in enumerate(counts):
            total = count.sum()
            reps[b] = np.sum(count * contributions) / total
            if diff is not None:
                diff_reps[b] = np.sum(count * diff) / total
        std_err = float(np.std(reps, ddof=1))
        diff_se = float(np.std(diff_reps, ddof=1)) if diff is not None else None
    else:
        std_err = float(np.std(contributions, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        diff_se = float(np.std(diff, ddof=1) / np.sqrt(n)) if diff is not None and n > 1 else None
    return PolicyValueResult(
        estimate=float(value),
        std_err=std_err,
        method=method,
        share_treated=share,
        n=n,
        n_bootstrap=n_bootstrap,
        difference=None if diff is None else float(np.mean(diff)),
        difference_std_err=diff_se,
    )
