"""LapseModel: gradients, parameter recovery, sharing, uncertainty, bad input."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import expit, ndtr

from neuroseq.errors import InputError
from neuroseq.psychometric import MODELS, PARAMS, LapseModel
from neuroseq.psychometric.estimator import Cells

LEVELS = np.array([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
TRUTH = {
    "psychometric": {
        "a": dict(mu=0.4, sigma=2.0, gamma=0.08, **{"lambda": 0.03}),
        "b": dict(mu=-0.3, sigma=1.2, gamma=0.02, **{"lambda": 0.12}),
    },
    "inattention": {
        "a": dict(mu=0.3, sigma=1.8, p_attend=0.8, p_bias=0.7),
        "b": dict(mu=-0.2, sigma=1.1, p_attend=0.9, p_bias=0.3),
    },
    "exploration": {"a": dict(sigma=2.0, beta=2.5), "b": dict(sigma=1.2, beta=1.5)},
    "fixed_error": {
        "a": dict(mu=0.3, sigma=1.9, epsilon=0.06),
        "b": dict(mu=-0.4, sigma=1.2, epsilon=0.1),
    },
}


def simulate(model, truth, n, seed, rewards=((2.0, 2.0), (2.0, 3.5), (3.5, 2.0))):
    """Trials drawn from a model's own p_right with known parameters."""
    rng = np.random.default_rng(seed)
    s = rng.choice(LEVELS, n)
    cond = rng.choice(sorted(truth), n)
    block = rng.integers(0, len(rewards), n)
    rl = np.array([rewards[b][0] for b in block])
    rr = np.array([rewards[b][1] for b in block])
    p = np.empty(n)
    for cname, theta in truth.items():
        sel = cond == cname
        p[sel] = MODELS[model].p_right(theta, s[sel], rl[sel], rr[sel])[0]
    return s, (rng.random(n) < p).astype(int), cond, rl, rr


@pytest.mark.parametrize("model", list(MODELS))
def test_analytic_gradient_matches_finite_differences(model):
    s, c, cond, rl, rr = simulate(model, TRUTH[model], 600, seed=1)
    est = LapseModel(model, share={"sigma": "all"}, random_state=0).fit(s, c, cond, rl, rr)
    rng = np.random.default_rng(0)
    for _ in range(3):
        u = rng.uniform(0.2, 0.8, est.u_.size)
        _, grad = est._nll(u, est._cells)
        numeric = approx_fprime(u, lambda x: est._nll(x, est._cells)[0], 1e-7)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("model", list(MODELS))
def test_parameters_are_recovered(model):
    truth = TRUTH[model]
    s, c, cond, rl, rr = simulate(model, truth, 8000, seed=2)
    est = LapseModel(model, random_state=0).fit(s, c, cond, rl, rr)
    for cname, theta in truth.items():
        for name, value in theta.items():
            fitted, se = est.params_[cname][name], est.se_[cname][name]
            assert abs(fitted - value) < max(4 * se, 0.02), (cname, name, fitted, value, se)
    assert est.n_params_ == 2 * len(MODELS[model].free)
    assert est.aic_ == pytest.approx(2 * est.n_params_ + 2 * est.nll_)
    assert est.bic_ == pytest.approx(est.n_params_ * np.log(8000) + 2 * est.nll_)


def test_exploration_lapses_fall_on_the_richer_side():
    """Pisupati et al. 2021: raising r_R lowers lambda (left choices on right trials)."""
    theta = {"all": {"sigma": 1.5, "beta": 1.2}}
    s, c, _cond, rl, rr = simulate(
        "exploration", theta, 6000, seed=3, rewards=((2.0, 2.0), (2.0, 4.0))
    )
    est = LapseModel("exploration", random_state=0).fit(s, c, None, rl, rr)
    beta = est.params_["all"]["beta"]
    assert beta == pytest.approx(1.2, abs=4 * est.se_["all"]["beta"])
    rich = est.predict_proba(np.full(2, 3.5), None, np.full(2, 2.0), np.array([2.0, 4.0]))
    assert rich[1] > rich[0]  # more rightward choices when right pays more
    # Asymptotic lapses at the condition's most common rewards (reported as r_L, r_R).
    p = est.params_["all"]
    assert (p["r_L"], p["r_R"]) in {(2.0, 2.0), (2.0, 4.0)}
    assert p["lambda"] == pytest.approx(expit(-beta * p["r_R"]))
    assert p["gamma"] == pytest.approx(expit(-beta * p["r_L"]))


def test_shared_parameters_are_one_value_and_count_once():
    truth = {
        c: {"mu": 0.2, "sigma": s, "gamma": 0.05, "lambda": 0.05}
        for c, s in [("a", 2.0), ("b", 1.0), ("c", 1.5)]
    }
    s, c, cond, _rl, _rr = simulate("psychometric", truth, 3000, seed=4)
    share = {"sigma": ["b", "c"], "gamma": "all", "lambda": "all", "beta": "all"}
    est = LapseModel("psychometric", share=share, random_state=0).fit(s, c, cond)
    p = est.params_
    assert p["b"]["sigma"] == p["c"]["sigma"] != p["a"]["sigma"]
    assert p["a"]["gamma"] == p["b"]["gamma"] == p["c"]["gamma"]
    assert est.n_params_ == 3 + 2 + 1 + 1  # mu x3, sigma x2, gamma, lambda
    free = LapseModel("psychometric", random_state=0).fit(s, c, cond)
    assert free.n_params_ == 12
    assert free.nll_ <= est.nll_ + 1e-6  # nested: the free fit is never worse


def test_fit_is_reproducible_and_scale_free():
    truth = TRUTH["psychometric"]
    s, c, cond, _, _ = simulate("psychometric", truth, 2000, seed=5)
    a = LapseModel(random_state=0).fit(s, c, cond)
    b = LapseModel(random_state=0).fit(s, c, cond)
    assert a.params_ == b.params_
    # The same data on a 100x larger stimulus scale: same NLL, sigma scaled, no bound hit.
    big = LapseModel(random_state=0).fit(100 * s, c, cond)
    assert big.nll_ == pytest.approx(a.nll_, abs=1e-5)
    assert big.params_["a"]["sigma"] == pytest.approx(100 * a.params_["a"]["sigma"], rel=1e-3)
    assert not any(big.at_bound_["a"][k] for k in ("mu", "sigma"))


COVERAGE_TRUTH = {
    "psychometric": {"mu": 0.3, "sigma": 1.5, "gamma": 0.1, "lambda": 0.1},
    "inattention": {"mu": 0.3, "sigma": 1.5, "p_attend": 0.8, "p_bias": 0.6},
    "exploration": {"sigma": 1.5, "beta": 1.0},
    "fixed_error": {"mu": 0.3, "sigma": 1.5, "epsilon": 0.1},
}


@pytest.mark.parametrize("model", list(MODELS))
def test_bootstrap_ci_coverage_is_near_nominal(model):
    """95% percentile CIs cover every true parameter in about 95% of simulated sessions."""
    truth = {"all": COVERAGE_TRUTH[model]}
    names = list(MODELS[model].free)
    hits = np.zeros(len(names))
    hessian_hits = np.zeros(len(names))
    n_sessions = 30
    for seed in range(n_sessions):
        s, c, _, rl, rr = simulate(
            model, truth, 500, seed=100 + seed, rewards=((2.0, 2.0), (2.0, 3.0))
        )
        est = LapseModel(model, n_starts=2, random_state=seed).fit(s, c, None, rl, rr)
        boot = est.bootstrap(80, random_state=seed)["params"][:, 0, :]
        for j, name in enumerate(names):
            draws = boot[:, list(PARAMS).index(name)]
            lo, hi = np.percentile(draws, [2.5, 97.5])
            value = truth["all"][name]
            hits[j] += lo <= value <= hi
            hessian_hits[j] += abs(est.params_["all"][name] - value) <= 1.96 * est.se_["all"][name]
    coverage = dict(zip(names, hits / n_sessions, strict=True))
    assert all(0.8 <= v <= 1.0 for v in coverage.values()), coverage
    assert (hessian_hits / n_sessions >= 0.75).all(), dict(zip(names, hessian_hits, strict=True))


def test_cells_aggregate_without_losing_trials():
    rng = np.random.default_rng(6)
    s = rng.choice(LEVELS, 500)
    c = rng.integers(0, 2, 500)
    cells = Cells.from_trials(rng.integers(0, 3, 500), s, np.ones(500), np.ones(500), c)
    assert cells.n.sum() == 500
    assert cells.k.sum() == c.sum()
    assert len(cells.n) <= 3 * LEVELS.size


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            dict(choice=np.ones(40, int)),
            r"choice: expected both left and right choices; found "
            r"only right",
        ),
        (
            dict(stimulus=np.full(40, 1.0)),
            r"stimulus in condition 'all': expected at least 2 "
            r"stimulus levels",
        ),
        (dict(stimulus=np.r_[np.nan, np.ones(39)]), r"stimulus: expected finite values; found 1"),
        (dict(choice=np.r_[2, np.zeros(39, int)]), r"choice: expected 0 \(left\) or 1 \(right\)"),
        (dict(condition=["a"] * 39), r"condition: expected one value per trial \(40\)"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, pattern):
    rng = np.random.default_rng(7)
    data = dict(stimulus=rng.choice(LEVELS, 40), choice=rng.integers(0, 2, 40))
    data.update(kwargs)
    with pytest.raises(InputError, match=pattern):
        LapseModel().fit(**data)


def test_bad_parameters_are_named():
    s = np.tile(LEVELS, 5)
    c = (s > 0).astype(int)
    with pytest.raises(InputError, match=r"model: expected one of"):
        LapseModel("weibull").fit(s, c)
    with pytest.raises(InputError, match=r"share: expected parameter names"):
        LapseModel(share={"slope": "all"}).fit(s, c)
    with pytest.raises(InputError, match=r"share\.sigma: expected disjoint groups"):
        LapseModel(share={"sigma": ["a", "z"]}).fit(s, c, np.where(s > 0, "a", "b"))


def test_logistic_link_fits_logistic_data():
    rng = np.random.default_rng(8)
    s = rng.choice(LEVELS, 6000)
    p = 0.05 + 0.9 * expit((s - 0.5) / 0.8)
    c = (rng.random(6000) < p).astype(int)
    logistic = LapseModel(link="logistic", random_state=0).fit(s, c)
    normal = LapseModel(link="normal", random_state=0).fit(s, c)
    assert logistic.params_["all"]["sigma"] == pytest.approx(0.8, rel=0.15)
    assert logistic.nll_ < normal.nll_ + 5


def test_cells_match_a_row_wise_unique():
    rng = np.random.default_rng(10)
    cond = rng.integers(0, 3, 700)
    s = rng.choice(LEVELS, 700)
    rl = rng.choice([1.0, 2.0], 700)
    rr = np.where(rng.random(700) < 0.5, 2.0, 3.5)
    c = rng.integers(0, 2, 700)
    cells = Cells.from_trials(cond, s, rl, rr, c)
    keys = np.column_stack([cond, s, rl, rr])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    got = np.column_stack([cells.cond, cells.s, cells.r_left, cells.r_right])
    np.testing.assert_array_equal(got, uniq)
    np.testing.assert_array_equal(cells.n, np.bincount(inverse.ravel()))
    np.testing.assert_array_equal(cells.k, np.bincount(inverse.ravel(), weights=c))


@pytest.mark.parametrize("model", list(MODELS))
def test_newton_reaches_the_lbfgsb_optimum(model, monkeypatch):
    """The projected Newton search ends no worse than L-BFGS-B from the same starts."""
    from scipy.optimize import minimize

    from neuroseq.psychometric import estimator

    monkeypatch.setattr(estimator, "_NEWTON_WORK", 10**9)  # Newton for every model here
    s, c, cond, rl, rr = simulate(model, TRUTH[model], 1500, seed=9)
    est = LapseModel(model, share={"sigma": "all"}, random_state=0).fit(s, c, cond, rl, rr)
    rng = np.random.default_rng(0)
    starts = [est._start(rng, first=(i == 0)) for i in range(est.n_starts)]
    lbfgsb = [
        minimize(
            est._nll,
            u0,
            args=(est._cells,),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * len(u0),
            options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-8},
        ).fun
        for u0 in starts
    ]
    assert est.nll_ <= min(lbfgsb) + 1e-6, (est.nll_, lbfgsb)
    # Converged: the projected gradient vanishes at the optimum.
    _, grad = est._nll(est.u_, est._cells)
    inside = (est.u_ > 1e-9) & (est.u_ < 1 - 1e-9)
    assert np.abs(grad[inside]).max() < 1e-4


# Levels of the IBL task; no stimulus between -100% and -25%. Right choices on 4 of 10
# trials at -100%, 7 of 10 at -25%, nearly all above: the best curve is a step in that
# gap (gamma near 0.4), which the smooth starts of the multi-start miss for the models
# with free asymmetric lapses (exact counts, so the case does not hang on a seed).
GAP_LEVELS = np.array([-100.0, -25.0, -12.5, -6.25, 0.0, 6.25, 12.5, 25.0, 100.0])
GAP_N = np.array([10, 10, 10, 10, 40, 20, 20, 30, 20])
GAP_K = np.array([4, 7, 10, 10, 36, 20, 20, 29, 20])


def gap_data():
    s = np.repeat(GAP_LEVELS, GAP_N)
    c = np.concatenate(
        [np.r_[np.ones(k), np.zeros(n - k)] for k, n in zip(GAP_K, GAP_N, strict=True)]
    )
    return s, c.astype(int)


def grid_nll(model, s, c):
    """Brute force: the least NLL over a grid of mu across the gap (to -20) and sigma
    from near its lower bound to the gap, the lapses fitted at every grid point.

    Every model here is p = a + (1 - a - b) F((s - mu) / sigma) in its lapses
    (``inattention``: a = (1 - p_attend) p_bias, b = (1 - p_attend)(1 - p_bias);
    ``fixed_error``: a = b = epsilon), and the NLL is convex in (a, b) at fixed mu and
    sigma: coordinate-wise Newton steps, kept in [0, 0.5] (inside every model's
    bounds), fit them. The value returned is the exact NLL at a feasible point.
    """
    levels, inv = np.unique(s, return_inverse=True)
    n, k = np.bincount(inv), np.bincount(inv, weights=c)
    mu, sigma = np.meshgrid(np.linspace(-100.0, -20.0, 321), np.geomspace(0.2, 80.0, 60))
    f = ndtr((levels - mu.ravel()[:, None]) / sigma.ravel()[:, None])
    a, b = np.full((f.shape[0], 1), 0.1), np.full((f.shape[0], 1), 0.1)
    tied = model == "fixed_error"

    def nll(a, b):
        p = np.clip(a + (1 - a - b) * f, 1e-12, 1 - 1e-12)
        return p, -(k * np.log(p) + (n - k) * np.log1p(-p)).sum(axis=1, keepdims=True)

    for _ in range(60):
        for which, dp in (("a", 1 - f), ("b", -f)) if not tied else (("ab", 1 - 2 * f),):
            p, _ = nll(a, b)
            g = (dp * ((n - k) / (1 - p) - k / p)).sum(axis=1, keepdims=True)
            h = (dp * dp * (k / p**2 + (n - k) / (1 - p) ** 2)).sum(axis=1, keepdims=True)
            step = g / np.maximum(h, 1e-12)
            if "a" in which:
                a = np.clip(a - step, 0.0, 0.5)
            if "b" in which:
                b = np.clip(b - step, 0.0, 0.5) if not tied else a
    return float(nll(a, b)[1].min())


@pytest.mark.parametrize(
    ("model", "missed"), [("psychometric", True), ("inattention", True), ("fixed_error", False)]
)
def test_fit_reaches_the_step_optimum_in_a_gap(model, missed):
    """Where a step in an empty gap fits best, the fit reaches the brute-force grid over
    mu in the gap; for the models with asymmetric lapses the multi-start alone ends in
    a worse smooth optimum (the grid beats it), so the step-limit start is what finds it.
    (``fixed_error``'s symmetric lapse cannot take the one-sided lapse: its optimum is
    smooth, and the fit must still be no worse than the grid.)"""
    s, c = gap_data()
    est = LapseModel(model, random_state=0).fit(s, c)
    grid = grid_nll(model, s, c)
    assert est.nll_ <= grid + 1e-6, (est.nll_, grid)
    smooth = est._nll(est._optimize(est._cells, est._starts()), est._cells)[0]
    if missed:
        assert grid < smooth - 0.05, (grid, smooth)
        assert -100.0 < est.params_["all"]["mu"] < -24.0


def test_step_start_is_per_condition_in_a_joint_fit():
    """A joint fit with per-condition parameters is the sum of the separate fits, the
    condition with the gap step included."""
    s1, c1 = gap_data()
    s2, c2, _, _, _ = simulate("psychometric", {"b": TRUTH["psychometric"]["b"]}, 600, seed=4)
    s = np.concatenate([s1, s2])
    c = np.concatenate([c1, c2])
    cond = np.array(["gap"] * s1.size + ["smooth"] * s2.size)
    joint = LapseModel(random_state=0).fit(s, c, cond)
    gap = LapseModel(random_state=0).fit(s1, c1)
    smooth = LapseModel(random_state=0).fit(s2, c2)
    assert joint.nll_ == pytest.approx(gap.nll_ + smooth.nll_, abs=1e-6)
    assert gap.nll_ <= grid_nll("psychometric", s1, c1) + 1e-6
    assert joint.params_["gap"]["mu"] == pytest.approx(gap.params_["all"]["mu"], abs=0.05)


def test_ibl_block_with_a_step_optimum(real_data):
    """IBL SWC_054, 2020-09-02, probabilityLeft 0.2: the step between -100% and -25%
    (NLL 36.3779) beats the smooth optimum (36.4129) that the multi-start alone ends in."""
    import pandas as pd

    raw = pd.read_csv(real_data / "ibl_SWC_054_trials.csv")
    block = raw[
        (raw.session_date == "2020-09-02") & (raw.probabilityLeft == 0.2) & (raw.choice != 0)
    ]
    s = block.signed_contrast_pct.to_numpy(float)
    c = (block.choice.to_numpy() == -1).astype(int)  # IBL: -1 is a rightward response
    est = LapseModel(random_state=0).fit(s, c)
    assert est.nll_ <= 36.379
    assert est.params_["all"]["gamma"] == pytest.approx(3 / 8, abs=0.01)
