"""`LapseModel`: maximum-likelihood fits of one lapse model, jointly across conditions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import logit, ndtri

from neuroseq.errors import InputError
from neuroseq.psychometric.models import MODELS, bounds

_EPS = 1e-10  # p is kept inside [_EPS, 1 - _EPS] so that log-likelihoods stay finite
_GTOL = 1e-8  # converged: largest projected gradient in u (u in [0, 1]), in nat
_H_STEP = 1e-6  # forward-difference step in u for the Hessian of the NLL
_NEWTON_MAXITER = 100
_DECREMENT = 1e-12  # converged: the Newton step would lower the NLL by less (nat)
_NEWTON_WORK = 4096  # most (rows x cells x model width) of a Newton Hessian pass


@dataclass
class Cells:
    """Trials aggregated into cells of identical (condition, stimulus, rewards)."""

    cond: np.ndarray  # condition index of each cell
    s: np.ndarray
    r_left: np.ndarray
    r_right: np.ndarray
    n: np.ndarray  # trials in the cell
    k: np.ndarray  # rightward choices in the cell

    @classmethod
    def from_trials(cls, cond, s, r_left, r_right, choice) -> Cells:
        # One integer key per trial, mixed-radix over the ranks of each column, so cells
        # come out in lexicographic order of (condition, stimulus, r_left, r_right)
        # without a row-wise unique (which sorts a structured view and is slow).
        key = np.zeros(len(s), dtype=np.int64)
        values = []
        for col in (cond, s, r_left, r_right):
            col = np.asarray(col)
            if col.size and (col == col[0]).all():
                levels, rank = col[:1], np.zeros(col.size, dtype=np.int64)
            else:
                levels, rank = np.unique(col, return_inverse=True)
            key = key * len(levels) + rank.ravel()
            values.append(levels)
        uniq, inverse = np.unique(key, return_inverse=True)
        n = np.bincount(inverse, minlength=len(uniq)).astype(float)
        k = np.bincount(inverse, weights=choice, minlength=len(uniq))
        cols = []
        for levels in reversed(values):
            cols.append(levels[uniq % len(levels)])
            uniq = uniq // len(levels)
        rr, rl, s_, c_ = cols
        return cls(c_.astype(np.int64), s_.astype(float), rl.astype(float), rr.astype(float), n, k)

    def with_k(self, k: np.ndarray) -> Cells:
        return Cells(self.cond, self.s, self.r_left, self.r_right, self.n, k)


def check_trials(
    stimulus, choice, condition=None, reward_left=None, reward_right=None, source: object = "data"
) -> tuple[np.ndarray, ...]:
    """Validate trial arrays; return float stimulus, int choice, str condition, rewards."""
    s = np.asarray(stimulus, dtype=float).ravel()
    c = np.asarray(choice).ravel()
    n = s.size
    cond = np.full(n, "all") if condition is None else np.asarray(condition).astype(str).ravel()
    rl = np.ones(n) if reward_left is None else np.asarray(reward_left, dtype=float).ravel()
    rr = np.ones(n) if reward_right is None else np.asarray(reward_right, dtype=float).ravel()
    for name, arr in (
        ("choice", c),
        ("condition", cond),
        ("reward_left", rl),
        ("reward_right", rr),
    ):
        if arr.size != n:
            raise InputError(source, name, f"one value per trial ({n})", f"{arr.size} values")
    for name, arr in (("stimulus", s), ("reward_left", rl), ("reward_right", rr)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise InputError(
                source,
                name,
                "finite values",
                f"{int(bad.sum())} non-finite (first at trial {int(np.flatnonzero(bad)[0])})",
            )
    if not ((c == 0) | (c == 1)).all():
        raise InputError(
            source,
            "choice",
            "0 (left) or 1 (right) on every trial",
            f"values {sorted(set(np.unique(c).tolist()) - {0, 1})}",
        )
    return s, c.astype(np.int64), cond.astype(str), rl, rr


class LapseModel:
    """Maximum-likelihood fit of one lapse model, jointly across conditions.

    Parameters
    ----------
    model : {"psychometric", "inattention", "exploration", "fixed_error"}
        See :mod:`neuroseq.psychometric.models` for the equations.
    share : mapping, optional
        Parameter -> conditions that share one value: ``"all"``, a list of condition
        names, or a list of such lists. Parameters not named are fitted per condition.
        Names that are not parameters of ``model`` are ignored, so one ``share`` can serve
        every model.
    link : {"normal", "logistic"}
        The sigmoid F of the models with a location and a scale.
    n_starts : int
        Most starting points of the multi-start search (the first is data-driven, the
        rest seeded random); the search stops early once two starts reach the same best
        NLL (within 1e-6 nat). Models with a location (all but ``exploration``) also
        score, in closed form, the curve's step limits between the presented levels,
        and search from the best one when it beats the multi-start's optimum.
    random_state : int or None
        Seed of the random starting points.

    Attributes
    ----------
    params_ : dict
        ``params_[condition][param]``: fitted and derived parameters (``gamma``,
        ``lambda``, ``gamma_plus_lambda``, ``lapse_asymmetry`` for every model; ``r_L`` and
        ``r_R``, the condition's most common rewards, for ``exploration``).
    se_ : dict
        Standard errors of the free parameters from the inverse Hessian of the NLL
        (NaN where the Hessian is singular), same layout.
    at_bound_ : dict
        True where a free parameter ended on its bound (its Hessian SE is then unreliable).
    nll_, aic_, bic_ : float
        Negative log-likelihood, AIC = 2k + 2 NLL, BIC = k ln(n) + 2 NLL (n = trials).
    n_params_, n_trials_ : int
    conditions_ : list of str

    Notes
    -----
    Trials are pooled into cells of identical (condition, stimulus, rewards), so one
    evaluation of the NLL costs the same for 100 or 10,000 trials. Each start is searched
    on u in [0, 1] (every parameter mapped linearly, or in log for sigma and beta, between
    its bounds) by projected Newton (Bertsekas 1982, SIAM J. Control Optim. 20:221): the
    Hessian is the forward difference of the analytic gradient along each coordinate,
    all coordinates evaluated in one vectorised pass, so a Newton iteration costs about
    one evaluation while the model is cheap; ``exploration``, whose every cell
    integrates over quadrature nodes, uses L-BFGS-B when that pass would be large.
    """

    def __init__(
        self,
        model: str = "psychometric",
        share: Mapping[str, Any] | None = None,
        link: str = "normal",
        n_starts: int = 5,
        random_state: int | None = None,
    ) -> None:
        self.model = model
        self.share = share
        self.link = link
        self.n_starts = n_starts
        self.random_state = random_state

    # ------------------------------------------------------------------ public API

    def fit(
        self, stimulus, choice, condition=None, reward_left=None, reward_right=None
    ) -> LapseModel:
        """Fit by maximum likelihood; trials with choice 0 (left) or 1 (right) only."""
        if self.model not in MODELS:
            raise InputError("LapseModel", "model", f"one of {sorted(MODELS)}", repr(self.model))
        if self.n_starts < 1:
            raise InputError("LapseModel", "n_starts", "an integer >= 1", repr(self.n_starts))
        s, c, cond, rl, rr = check_trials(stimulus, choice, condition, reward_left, reward_right)
        self.conditions_ = sorted(set(cond.tolist()))
        if np.unique(c).size < 2:
            raise InputError(
                "data",
                "choice",
                "both left and right choices",
                f"only {'right' if c[0] == 1 else 'left'} choices",
            )
        for name in self.conditions_:
            levels = np.unique(s if len(self.conditions_) == 1 else s[cond == name])
            if levels.size < 2:
                raise InputError(
                    "data",
                    f"stimulus in condition {name!r}",
                    "at least 2 stimulus levels",
                    f"only {levels.tolist()}",
                )
        idx = (
            np.zeros(s.size, dtype=np.int64)
            if len(self.conditions_) == 1
            else np.searchsorted(self.conditions_, cond)
        )
        self._spec = MODELS[self.model]
        self._cells = Cells.from_trials(idx, s, rl, rr, c)
        cells = self._cells
        self._layout(cells.s, np.concatenate([cells.r_left, cells.r_right]))
        self._rewards = self._typical_rewards(cells)
        u = self._optimize(self._cells, self._starts())
        # The step-limit start (see _step_start) is searched only where its NLL is below
        # the multi-start's optimum: the search descends from it, so the fit then ends
        # below that optimum, and on data where a smooth curve fits best it costs one
        # evaluation.
        step = self._step_start(self._cells)
        if step is not None and self._nll(step, self._cells)[0] < self._nll(u, self._cells)[0]:
            u = self._optimize(self._cells, [u, step])
        self._set_fit(u, n_trials=s.size)
        return self

    def predict_proba(
        self, stimulus, condition=None, reward_left=None, reward_right=None
    ) -> np.ndarray:
        """p(rightward choice) per trial under the fitted parameters."""
        s = np.asarray(stimulus, dtype=float).ravel()
        _, _, cond, rl, rr = check_trials(
            s, np.zeros(s.size, int), condition, reward_left, reward_right
        )
        unknown = sorted(set(cond.tolist()) - set(self.conditions_))
        if unknown:
            raise InputError(
                "data", "condition", f"conditions seen in fit {self.conditions_}", f"{unknown}"
            )
        idx = np.searchsorted(self.conditions_, cond)
        p, _ = self._p(self._theta(self.u_), idx, s, rl, rr)
        return p

    def loglik(
        self, stimulus, choice, condition=None, reward_left=None, reward_right=None
    ) -> float:
        """Log-likelihood of new trials under the fitted parameters."""
        p = self.predict_proba(stimulus, condition, reward_left, reward_right)
        c = np.asarray(choice, dtype=float)
        return float(np.sum(c * np.log(p) + (1 - c) * np.log1p(-p)))

    def deviance(self, k: np.ndarray | None = None) -> float:
        """Deviance against the saturated model over cells (the fitted cells' counts)."""
        cells = self._cells if k is None else self._cells.with_k(k)
        p, _ = self._p(self._theta(self.u_), cells.cond, cells.s, cells.r_left, cells.r_right)
        n, k = cells.n, cells.k
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(k > 0, k * np.log(k / (n * p)), 0.0)
            b = np.where(n - k > 0, (n - k) * np.log((n - k) / (n * (1 - p))), 0.0)
        return float(2.0 * np.sum(a + b))

    def bootstrap(self, n_boot: int = 200, random_state: int | None = None) -> dict[str, Any]:
        """Parametric bootstrap: refit data simulated from the fitted model.

        Returns
        -------
        dict
            ``params``: array (n_boot, n_conditions, n_params) over
            :data:`neuroseq.psychometric.models.PARAMS`; ``deviance``: (n_boot,) deviances
            of the refits, for the goodness-of-fit p-value.
        """
        from neuroseq.psychometric.models import PARAMS

        rng = np.random.default_rng(random_state)
        p_hat, _ = self._p(
            self._theta(self.u_),
            self._cells.cond,
            self._cells.s,
            self._cells.r_left,
            self._cells.r_right,
        )
        out = np.full((n_boot, len(self.conditions_), len(PARAMS)), np.nan)
        dev = np.empty(n_boot)
        keep = (self.u_, self.params_, self._cells)
        try:
            for b in range(n_boot):
                k = rng.binomial(self._cells.n.astype(np.int64), p_hat).astype(float)
                cells = self._cells.with_k(k)
                # Start at the MLE and at one random point: refits are cheap on cells.
                u = self._optimize(cells, [keep[0], self._start(rng, first=False)])
                self._cells, self.u_ = cells, u
                params = self._named(u)
                for i, cname in enumerate(self.conditions_):
                    for j, name in enumerate(PARAMS):
                        out[b, i, j] = params[cname].get(name, np.nan)
                dev[b] = self.deviance()
        finally:
            self.u_, self.params_, self._cells = keep
        return {"params": out, "deviance": dev}

    # ------------------------------------------------------------------ internals

    def _layout(self, s: np.ndarray, rewards: np.ndarray) -> None:
        """Map (condition, free parameter) -> slot of the optimisation vector."""
        free, conds = self._spec.free, self.conditions_
        share = dict(self.share or {})
        from neuroseq.psychometric.models import PARAMS

        unknown = sorted(set(share) - set(PARAMS))
        if unknown:
            raise InputError(
                "LapseModel", "share", f"parameter names among {list(PARAMS)}", f"{unknown}"
            )
        index = np.full((len(conds), len(free)), -1, dtype=np.int64)
        slots: list[str] = []
        for j, name in enumerate(free):
            for group in self._groups(share.get(name), name):
                index[[conds.index(c) for c in group], j] = len(slots)
                slots.append(name)
            for i in np.flatnonzero(index[:, j] < 0):
                index[i, j] = len(slots)
                slots.append(name)
        self._index, self._slots = index, slots
        b = [bounds(name, s, rewards) for name in slots]
        self._lo = np.array([x[0] for x in b])
        self._hi = np.array([x[1] for x in b])
        self._log = np.array([x[2] for x in b])
        # The search runs on u in [0, 1]: linear between the bounds, or linear in log for
        # the scale-like parameters (sigma, beta), so every coordinate has the same scale.
        self._a = np.where(self._log, np.log(np.where(self._log, self._lo, 1.0)), self._lo)
        self._b = np.where(self._log, np.log(np.where(self._log, self._hi, 1.0)), self._hi)
        self._span = self._b - self._a
        self._scale = (float(np.min(s)), float(np.max(s)), float(np.max(np.abs(rewards))) or 1.0)

    def _groups(self, spec: Any, name: str) -> list[list[str]]:
        conds = self.conditions_
        if spec is None:
            return []
        if spec == "all":
            return [list(conds)]
        groups = [spec] if spec and all(isinstance(x, str) for x in spec) else list(spec)
        seen: set[str] = set()
        for group in groups:
            missing = sorted(set(group) - set(conds))
            if missing or seen & set(group):
                raise InputError(
                    "LapseModel",
                    f"share.{name}",
                    f"disjoint groups of conditions among {conds}",
                    f"{group}",
                )
            seen |= set(group)
        return [list(g) for g in groups]

    def _theta(self, u: np.ndarray) -> np.ndarray:
        v = self._a + np.clip(u, 0.0, 1.0) * (self._b - self._a)
        v[self._log] = np.exp(v[self._log])
        return v

    def _u(self, theta: np.ndarray) -> np.ndarray:
        theta = np.clip(theta, self._lo, self._hi)
        v = np.where(self._log, np.log(np.where(self._log, theta, 1.0)), theta)
        return np.clip((v - self._a) / (self._b - self._a), 0.0, 1.0)

    def _p(self, theta: np.ndarray, cond, s, rl, rr) -> tuple[np.ndarray, list[np.ndarray]]:
        names = self._spec.free
        per = {name: theta[self._index[cond, j]] for j, name in enumerate(names)}
        p, grad = self._spec.p_right(per, s, rl, rr, link=self.link)
        return np.clip(p, _EPS, 1 - _EPS), [grad[name] for name in names]

    def _plan(self, cells: Cells, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Slot of each (cell, free parameter), and where each (row, parameter, cell)
        term of the gradient lands in the flattened (row, slot) gradient.

        Built once per set of cells and number of rows (bootstrap refits share the
        cells' layout), so an evaluation of the NLL is a fixed number of array
        operations, whatever the number of rows evaluated at once.
        """
        if getattr(self, "_plan_for", None) is not cells.cond:
            self._plan_for, self._plan_sum = cells.cond, {}
            self._plan_idx = self._index[cells.cond]
        idx = self._plan_idx  # (cells, free)
        if rows not in self._plan_sum:
            self._plan_sum[rows] = (
                np.arange(rows)[:, None] * len(self._slots) + idx.T.ravel()[None, :]
            ).ravel()
        return idx, self._plan_sum[rows]

    def _grad_rows(self, theta: np.ndarray, cells: Cells) -> tuple[np.ndarray, np.ndarray]:
        """NLL and its gradient in the natural parameters at each row of ``theta``."""
        rows, slots = theta.shape
        idx, where = self._plan(cells, rows)
        names = self._spec.free
        per_cell = theta[:, idx.T]  # (rows, free, cells): one gather for every parameter
        per = {name: per_cell[:, j] for j, name in enumerate(names)}
        p, grad = self._spec.p_right(per, cells.s, cells.r_left, cells.r_right, link=self.link)
        p = np.minimum(np.maximum(p, _EPS), 1 - _EPS)
        n, k = cells.n, cells.k
        nll = -(k * np.log(p) + (n - k) * np.log1p(-p)).sum(axis=-1)
        d_p = (n - k) / (1 - p) - k / p
        dp = np.concatenate([grad[name] * d_p for name in names], axis=-1)
        g = np.bincount(where, weights=dp.ravel(), minlength=rows * slots)
        return nll, g.reshape(rows, slots)

    def _nll_rows(self, u: np.ndarray, cells: Cells) -> tuple[np.ndarray, np.ndarray]:
        """NLL and its gradient in u at each row of ``u`` (rows, slots), in one pass."""
        theta = self._a + np.minimum(np.maximum(u, 0.0), 1.0) * self._span
        theta[:, self._log] = np.exp(theta[:, self._log])
        nll, g = self._grad_rows(theta, cells)
        return nll, g * np.where(self._log, theta * self._span, self._span)

    def _nll(self, u: np.ndarray, cells: Cells) -> tuple[float, np.ndarray]:
        nll, g = self._nll_rows(np.asarray(u, dtype=float)[None, :], cells)
        return float(nll[0]), g[0]

    def _nll_hess(self, u: np.ndarray, cells: Cells) -> tuple[float, np.ndarray, np.ndarray]:
        """NLL, gradient and Hessian in u; the Hessian by forward differences of the
        analytic gradient, every shifted point evaluated in the same pass."""
        m = len(u)
        h = np.where(u > 0.5, -_H_STEP, _H_STEP)  # step inward, never out of [0, 1]
        rows = np.empty((m + 1, m))
        rows[:] = u
        rows.flat[m :: m + 1] += h  # row i + 1 is u shifted along coordinate i
        nll, g = self._nll_rows(rows, cells)
        hess = (g[1:] - g[0]) / h[:, None]
        hess += hess.T
        hess *= 0.5
        return float(nll[0]), g[0], hess

    def _newton(self, cells: Cells, u0: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Projected Newton on the box [0, 1] (Bertsekas 1982); returns u, NLL, converged.

        Coordinates on a bound whose gradient pushes outward are held there; the others
        take a Newton step on their block of the Hessian, with its eigenvalues replaced by
        their absolute values (floored) where it is not positive definite, so that the
        step always descends; then a backtracking Armijo search along the projected arc.
        Converged: largest projected gradient below ``_GTOL``; or, with the Hessian
        positive definite, a Newton step that would lower the NLL by less than
        ``_DECREMENT``; or no further decrease at machine precision.
        """
        u = np.minimum(np.maximum(np.asarray(u0, dtype=float), 0.0), 1.0)
        f, g, hess = self._nll_hess(u, cells)
        for _ in range(_NEWTON_MAXITER):
            if u.min() > 0.0 and u.max() < 1.0:  # the usual case: nothing on a bound
                free = None
                gf, sub = g, hess
            else:
                free = ~(((u <= 0.0) & (g > 0)) | ((u >= 1.0) & (g < 0)))
                gf, sub = g[free], hess[np.ix_(free, free)]
            if gf.size == 0 or np.abs(gf).max() <= _GTOL:
                return u, f, True
            lam, vec = np.linalg.eigh(sub)
            positive = lam[0] > 0
            lam = np.abs(lam)
            lam = np.maximum(lam, 1e-10 * max(1.0, float(lam.max())))
            proj = (gf @ vec) / np.sqrt(lam)
            if positive and proj @ proj <= 2.0 * _DECREMENT:
                # Within _DECREMENT nat of the minimum of the local quadratic model, and
                # the Hessian is positive definite there: the step cannot gain more.
                return u, f, True
            step = vec @ (proj / np.sqrt(lam))
            if free is None:
                d = -step
            else:
                d = np.zeros_like(u)
                d[free] = -step
            t, slope = 1.0, float(g @ d)
            while True:
                un = np.minimum(np.maximum(u + t * d, 0.0), 1.0)
                fn, gn, hn = self._nll_hess(un, cells)
                if fn <= f + 1e-4 * float(g @ (un - u)):
                    break
                # Backtrack to the minimum of the quadratic through f, the slope and fn,
                # kept within [0.1 t, 0.5 t]: a step into a region where p is near 0 or
                # 1 raises the NLL by orders of magnitude, and halving from there would
                # take many evaluations (Nocedal & Wright 2006, section 3.5).
                curv = fn - f - slope * t
                t_min = -slope * t * t / (2.0 * curv) if curv > 0 else 0.5 * t
                t = min(max(t_min, 0.1 * t), 0.5 * t)
                if t < 1e-10:
                    return u, f, False  # no descent along the arc: let L-BFGS-B finish
            done = f - fn <= 1e-15 * max(1.0, abs(f))
            u, f, g, hess = un, fn, gn, hn
            if done:
                return u, f, True
        return u, f, False

    def _optimize(self, cells: Cells, starts: Iterable[np.ndarray]) -> np.ndarray:
        """Minimise the NLL from each start; stop once two starts agree on the best NLL.

        Projected Newton where its Hessian pass is cheap: evaluating the NLL at the
        ``slots + 1`` points of the pass costs about one evaluation while the array
        work is small (``_NEWTON_WORK`` numbers per row), and Newton needs a few times
        fewer evaluations than L-BFGS-B. Where the work is large (``exploration``
        integrates over quadrature nodes in every cell) the pass costs ``slots + 1``
        evaluations and L-BFGS-B is used. A start on which Newton does not converge is
        finished by L-BFGS-B from where Newton stopped.
        """
        work = (len(self._slots) + 1) * len(cells.n) * self._spec.width
        newton = work <= _NEWTON_WORK
        best_u, best_f, agree = None, np.inf, 0
        for u0 in starts:
            u, f, ok = self._newton(cells, u0) if newton else (u0, np.inf, False)
            if not ok:
                res = minimize(
                    self._nll,
                    u,
                    args=(cells,),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=[(0.0, 1.0)] * len(u),
                    options={"maxiter": 1000, "ftol": 1e-12, "gtol": _GTOL},
                )
                if res.fun < f:
                    u, f = np.clip(res.x, 0.0, 1.0), float(res.fun)
            if f < best_f - 1e-6:
                best_u, best_f, agree = u, f, 1
            elif f < best_f + 1e-6:
                agree += 1
                if f < best_f:
                    best_u, best_f = u, f
            if agree >= 2:
                break
        return np.clip(best_u, 0.0, 1.0)

    def _starts(self) -> Iterator[np.ndarray]:
        """The multi-start's points: data-driven, then seeded random; ``n_starts`` at most.

        Drawn lazily, in order: a start the search never reaches costs nothing, and the
        ones it reaches are the same points as when all are drawn up front.
        """
        rng = np.random.default_rng(self.random_state)
        for i in range(self.n_starts):
            yield self._start(rng, first=(i == 0))

    def _step_start(self, cells: Cells) -> np.ndarray | None:
        """A start near the best step of the curve between presented stimulus levels.

        As sigma -> 0 the curve becomes a step at mu: every level below mu at the left
        asymptote, every level above at the right one. Two such limits per location are
        scored, each in closed form from the binomial counts (``Model.step`` fits the
        asymptotes to the trials on each side): mu in the gap between two adjacent
        levels, and mu at a level, whose own p is then free between the asymptotes
        (there ``F((x - mu) / sigma)`` can take any value as both go to 0). Such a
        limit, or an optimum with sigma small against the gaps around it, can beat
        every smooth optimum (lapses on one side of a gap where no stimulus was shown)
        yet lies where starts placed by the stimulus range rarely lead. For each
        location slot the limit of lowest NLL (summed over the conditions sharing the
        slot) is taken as a start: lapse parameters at their closed-form values
        (trial-weighted over conditions sharing a slot), sigma a sixth of the distance
        to the nearest neighbouring level (a sixth of the gap for a gap), and mu placed
        so that F at the level gives its fitted p; the search then has a gradient to
        refine the limit from. None for models without a location (``exploration``).
        """
        spec = self._spec
        if spec.step is None:
            return None
        names = spec.free
        j_mu = names.index("mu")
        finv = ndtri if self.link == "normal" else logit
        per_cond = []
        for i in range(len(self.conditions_)):
            sel = cells.cond == i
            levels, inv = np.unique(cells.s[sel], return_inverse=True)
            n = np.bincount(inv, weights=cells.n[sel])
            k = np.bincount(inv, weights=cells.k[sel])
            cn, ck = np.concatenate([[0.0], np.cumsum(n)]), np.concatenate([[0.0], np.cumsum(k)])
            # Gap g lies between levels g and g + 1; the level case at interior level i
            # has levels < i below and levels > i above.
            gap = self._step_limit(ck[1:-1], cn[1:-1], ck[-1] - ck[1:-1], cn[-1] - cn[1:-1])
            inner = np.arange(1, levels.size - 1)
            level = self._step_limit(
                ck[inner], cn[inner], ck[-1] - ck[inner + 1], cn[-1] - cn[inner + 1]
            )
            pb, pa = level[1], level[2]
            q = np.clip(k[inner] / n[inner], pb, pa)
            level[0] -= k[inner] * np.log(np.clip(q, _EPS, 1)) + (n[inner] - k[inner]) * np.log(
                np.clip(1 - q, _EPS, 1)
            )
            frac = np.divide(q - pb, pa - pb, out=np.full_like(q, 0.5), where=pa > pb)
            level[3] = finv(np.clip(frac, 0.02, 0.98))  # z = (x - mu) / sigma at the level
            per_cond.append((levels, gap, level, n.sum()))

        theta = self._theta(self._start(np.random.default_rng(0), first=True))
        chosen: dict[int, tuple[list[Any], int, float]] = {}  # condition -> limit, index, sigma
        for slot in np.unique(self._index[:, j_mu]):
            conds = np.flatnonzero(self._index[:, j_mu] == slot)
            union = np.unique(np.concatenate([per_cond[i][0] for i in conds]))
            where = np.concatenate([union, 0.5 * (union[:-1] + union[1:])])
            best = (np.inf, None)
            for x in where:
                total, picks = 0.0, []
                for i in conds:
                    levels, gap, level, _ = per_cond[i]
                    pos = int(np.searchsorted(levels, x))
                    if 0 < pos < levels.size - 1 and levels[pos] == x:  # an interior level
                        picks.append((level, pos - 1))
                        total += level[0][pos - 1]
                    elif 0 < pos < levels.size and levels[pos] != x:  # inside a gap
                        picks.append((gap, pos - 1))
                        total += gap[0][pos - 1]
                    else:  # the condition's first or last level, or outside its range
                        total = np.inf
                        break
                if total < best[0]:
                    best = (total, (x, picks))
            if best[1] is None:
                return None
            x, picks = best[1]
            sigmas, zs = [], []
            for i, (table, j) in zip(conds, picks, strict=True):
                levels = per_cond[i][0]
                if table is per_cond[i][1]:  # a gap: mu at its middle
                    sigmas.append((levels[j + 1] - levels[j]) / 6.0)
                    zs.append(0.0)
                else:  # a level: F((x - mu) / sigma) at its fitted p
                    near = min(levels[j + 1] - levels[j], levels[j + 2] - levels[j + 1])
                    sigmas.append(near / 6.0)
                    zs.append(float(table[3][j]))
            w = np.array([per_cond[i][3] for i in conds])
            sigma = min(sigmas)
            theta[slot] = x - sigma * float(w @ np.array(zs) / w.sum())
            for i, (table, j) in zip(conds, picks, strict=True):
                chosen[i] = (table, j, sigma)
        for j, name in enumerate(names):
            if name == "mu":
                continue
            for slot in np.unique(self._index[:, j]):
                conds = np.flatnonzero(self._index[:, j] == slot)
                if name == "sigma":
                    theta[slot] = min(chosen[i][2] for i in conds)
                else:
                    w = np.array([per_cond[i][3] for i in conds])
                    v = np.array([chosen[i][0][4][name][chosen[i][1]] for i in conds])
                    theta[slot] = float(w @ v / w.sum())
        return self._u(theta)

    def _step_limit(self, kb, nb, ka, na) -> list[Any]:
        """NLL of the step limit per split of the levels, with the asymptotes p below
        and above and the lapse parameters at their maximum-likelihood values:
        ``[nll, p_below, p_above, None, lapses]`` (slot 3 is filled by the caller)."""
        lapses = self._spec.step(kb, nb, ka, na)
        # The asymptotes from the model itself: p far below and far above mu.
        theta = {"mu": 0.0, "sigma": 1.0, **lapses}
        ones = np.ones_like(nb)
        pb = np.clip(self._spec.p_right(theta, -40.0 * ones, ones, ones)[0], _EPS, 1 - _EPS)
        pa = np.clip(self._spec.p_right(theta, 40.0 * ones, ones, ones)[0], _EPS, 1 - _EPS)
        nll = -(
            kb * np.log(pb)
            + (nb - kb) * np.log1p(-pb)
            + ka * np.log(pa)
            + (na - ka) * np.log1p(-pa)
        )
        return [nll, pb, pa, None, lapses]

    def _start(self, rng: np.random.Generator, first: bool) -> np.ndarray:
        lo, hi, r_max = self._scale
        span = hi - lo
        mid = 0.0 if lo < 0 < hi else 0.5 * (lo + hi)
        if first:
            guess = {
                "mu": mid,
                "sigma": span / 6,
                "gamma": 0.05,
                "lambda": 0.05,
                "p_attend": 0.9,
                "p_bias": 0.5,
                "epsilon": 0.05,
                "beta": 3.0 / r_max,
            }
        else:
            guess = {
                "mu": rng.uniform(lo + span / 4, hi - span / 4),
                "sigma": span * np.exp(rng.uniform(np.log(0.01), np.log(1.0))),
                "gamma": rng.uniform(0, 0.2),
                "lambda": rng.uniform(0, 0.2),
                "p_attend": rng.uniform(0.6, 1.0),
                "p_bias": rng.uniform(0.1, 0.9),
                "epsilon": rng.uniform(0, 0.2),
                "beta": np.exp(rng.uniform(np.log(0.3), np.log(30))) / r_max,
            }
        return self._u(np.array([guess[name] for name in self._slots]))

    def _typical_rewards(self, cells: Cells) -> np.ndarray:
        """Each condition's most common (r_left, r_right); ties go to the smallest pair."""
        out = np.empty((len(self.conditions_), 2))
        for i in range(len(self.conditions_)):
            counts: dict[tuple[float, float], float] = {}
            sel = cells.cond == i
            for pair, n in zip(
                zip(cells.r_left[sel].tolist(), cells.r_right[sel].tolist(), strict=True),
                cells.n[sel].tolist(),
                strict=True,
            ):
                counts[pair] = counts.get(pair, 0.0) + n
            top = max(counts.values())
            out[i] = min(pair for pair, n in counts.items() if n == top)
        return out

    def _named(self, u: np.ndarray) -> dict[str, dict[str, float]]:
        theta = self._theta(u)
        out = {}
        for i, cname in enumerate(self.conditions_):
            values = {
                name: float(theta[self._index[i, j]]) for j, name in enumerate(self._spec.free)
            }
            values.update(self._spec.derived(values, *self._rewards[i]))
            out[cname] = values
        return out

    def _set_fit(self, u: np.ndarray, n_trials: int) -> None:
        self.u_ = u
        self.params_ = self._named(u)
        self.nll_ = self._nll(u, self._cells)[0]
        self.n_params_ = len(self._slots)
        self.n_trials_ = int(n_trials)
        self.aic_ = 2.0 * self.n_params_ + 2.0 * self.nll_
        self.bic_ = self.n_params_ * np.log(self.n_trials_) + 2.0 * self.nll_
        se = self._hessian_se(self._theta(u))
        edge = (u <= 1e-6) | (u >= 1 - 1e-6)
        self.se_, self.at_bound_ = {}, {}
        for i, cname in enumerate(self.conditions_):
            slots = {name: self._index[i, j] for j, name in enumerate(self._spec.free)}
            self.se_[cname] = {name: float(se[k]) for name, k in slots.items()}
            self.at_bound_[cname] = {name: bool(edge[k]) for name, k in slots.items()}

    def _hessian_se(self, theta: np.ndarray) -> np.ndarray:
        """Standard errors from the inverse of the NLL Hessian in natural parameters.

        Central differences of the analytic gradient, every shifted point in one pass.
        """
        h = 1e-6 * np.maximum(np.abs(theta), self._hi - self._lo)
        step = np.diag(h)
        _, g = self._grad_rows(np.vstack([theta + step, theta - step]), self._cells)
        hess = (g[: theta.size] - g[theta.size :]) / (2 * h[:, None])
        hess = 0.5 * (hess + hess.T)
        try:
            cov = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            return np.full(theta.size, np.nan)
        diag = np.diag(cov)
        return np.where(diag > 0, np.sqrt(np.abs(diag)), np.nan)
