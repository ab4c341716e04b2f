"""NNGP and finite-network estimators: exact GP algebra, selection on training data only,
parameter recovery, the prior of the finite networks, scikit-learn's checks, bad input."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroseq.errors import InputError
from neuroseq.nngp import (
    FiniteMLPClassifier,
    FiniteMLPRegressor,
    NNGPClassifier,
    NNGPRegressor,
    nngp_kernel,
)
from neuroseq.nngp.network import FullyConnected


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(False)


FIXED = dict(depth=2, activation="relu", weight_var=1.7, bias_var=0.3)


def toy(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    return X, y


def test_prediction_equals_direct_linear_algebra():
    X, y = toy()
    Xs = np.random.default_rng(1).normal(size=(7, 4))
    m = NNGPRegressor(**FIXED, noise=0.05).fit(X, y)
    K = nngp_kernel(X, **FIXED)
    A = K + 0.05 * np.mean(np.diag(K)) * np.eye(len(X))
    ys = (y - y.mean()) / y.std()
    Ks = nngp_kernel(X, Xs, **FIXED)
    mean = Ks @ np.linalg.solve(A, ys) * y.std() + y.mean()
    var = np.diag(nngp_kernel(Xs, **FIXED)) - np.einsum("ij,ji->i", Ks, np.linalg.solve(A, Ks.T))
    got_mean, got_std = m.predict(Xs, return_std=True)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-9)
    np.testing.assert_allclose(got_std, np.sqrt(var) * y.std(), rtol=1e-7)
    assert m.noise_var_ == pytest.approx(0.05 * np.mean(np.diag(K)))
    # Memory-bounded prediction in chunks gives the same numbers.
    small = NNGPRegressor(**FIXED, noise=0.05, block_elements=100).fit(X, y)
    np.testing.assert_allclose(small.predict(Xs, return_std=True)[1], got_std, rtol=1e-10)


def test_evidence_is_the_gaussian_log_density_of_the_training_targets():
    X, y = toy()
    m = NNGPRegressor(**FIXED, noise=(0.01, 0.1), selection="evidence").fit(X, y)
    K = nngp_kernel(X, **FIXED)
    ys = (y - y.mean()) / y.std()
    for eps, score in zip(
        m.selection_results_["noise"], m.selection_results_["evidence"], strict=True
    ):
        cov = K + eps * np.mean(np.diag(K)) * np.eye(len(X))
        assert score == pytest.approx(multivariate_normal(cov=cov).logpdf(ys), rel=1e-9)


@pytest.mark.parametrize("classify", [False, True])
def test_closed_form_leave_one_out_equals_refitting_without_each_sample(classify):
    X, y = toy(n=40)
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66])) if classify else None
    est = NNGPClassifier if classify else NNGPRegressor
    m = est(**FIXED, noise=(0.02, 0.3), selection="loo").fit(X, labels if classify else y)
    K = nngp_kernel(X, **FIXED)
    if classify:
        Y = np.where(labels[:, None] == np.arange(3)[None, :], 0.9, -0.1)
    else:
        Y = ((y - y.mean()) / y.std())[:, None]
    for eps, score in zip(m.selection_results_["noise"], m.selection_results_["loo"], strict=True):
        noise = eps * np.mean(np.diag(K))
        loo = np.empty_like(Y)
        for i in range(len(X)):
            rest = np.arange(len(X)) != i
            A = K[np.ix_(rest, rest)] + noise * np.eye(len(X) - 1)
            loo[i] = K[i, rest] @ np.linalg.solve(A, Y[rest])
        mse = np.mean((Y - loo) ** 2)
        expected = np.mean(loo.argmax(1) == labels) - 1e-6 * mse if classify else -mse
        assert score == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_evidence_recovers_depth_and_noise_of_data_drawn_from_the_nngp_prior():
    """Targets drawn from the prior (erf, depth 3) plus noise of variance 0.1 x the mean
    prior variance: the evidence picks depth 3 among {1, 3, 6}, the noise variance within
    half a decade, and the posterior mean tracks the noiseless function on held-out inputs.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    K = nngp_kernel(X, depth=3, activation="erf", weight_var=2.0, bias_var=0.5)
    true_noise = 0.1 * np.mean(np.diag(K))
    f = np.linalg.cholesky(K + 1e-9 * np.eye(len(X))) @ rng.normal(size=len(X))
    y = f + np.sqrt(true_noise) * rng.normal(size=len(X))
    m = NNGPRegressor(
        depth=(1, 3, 6),
        activation="erf",
        weight_var=2.0,
        bias_var=0.5,
        noise=np.logspace(-3, 0, 7),
    ).fit(X[:400], y[:400])
    assert m.depth_ == 3
    noise_in_target_units = m.noise_var_ * m.y_scale_[0] ** 2  # targets are standardised
    assert 10**-0.5 < noise_in_target_units / true_noise < 10**0.5
    assert np.corrcoef(m.predict(X[400:]), f[400:])[0, 1] > 0.9
    assert len(m.selection_results_["evidence"]) == 3 * 7


def test_classifier_regresses_on_one_hot_targets_with_text_labels():
    rng = np.random.default_rng(3)
    centres = {"left": [-2, 0], "right": [2, 0], "up": [0, 2.5]}
    y = np.array(list(centres))[rng.integers(0, 3, 90)]
    X = np.array([centres[c] for c in y]) + rng.normal(0, 0.6, (90, 2))
    m = NNGPClassifier(depth=(1, 2), weight_var=1.0, bias_var=(0.0, 0.2)).fit(X[:60], y[:60])
    assert list(m.classes_) == ["left", "right", "up"]
    means, std = m.predict_mean(X[60:], return_std=True)
    assert means.shape == (30, 3)
    assert std.shape == (30,)
    assert (std > 0).all()
    assert np.mean(m.predict(X[60:]) == y[60:]) > 0.9
    # The fitted weights solve (K + noise) alpha = Y with Y in {-0.1, 0.9}.
    Y = np.where(y[:60, None] == m.classes_[None, :], 0.9, -0.1)
    K = nngp_kernel(X[:60], depth=m.depth_, weight_var=m.weight_var_, bias_var=m.bias_var_)
    np.testing.assert_allclose((K + m.noise_var_ * np.eye(60)) @ m.dual_coef_, Y, atol=1e-8)


def test_finite_network_starts_from_the_nngp_prior():
    net = FullyConnected(
        50,
        3,
        width=400,
        depth=2,
        weight_var=1.8,
        bias_var=0.4,
        generator=torch.Generator().manual_seed(0),
    )
    first, hidden = net.layers[0], net.layers[2]
    assert float(first.weight.detach().var()) == pytest.approx(1.8 / 50, rel=0.03)
    assert float(hidden.weight.detach().var()) == pytest.approx(1.8 / 400, rel=0.03)
    assert float(hidden.bias.detach().var()) == pytest.approx(0.4, rel=0.25)
    assert len([layer for layer in net.layers if isinstance(layer, torch.nn.Linear)]) == 3


def test_finite_network_is_reproducible_and_learns():
    X, y = toy(n=200)
    opts = dict(width=64, depth=2, max_epochs=60, random_state=5)
    a = FiniteMLPRegressor(**opts).fit(X[:150], y[:150])
    b = FiniteMLPRegressor(**opts).fit(X[:150], y[:150])
    np.testing.assert_array_equal(a.predict(X[150:]), b.predict(X[150:]))
    r2 = 1 - np.mean((a.predict(X[150:]) - y[150:]) ** 2) / np.var(y[150:])
    assert r2 > 0.6
    assert 0 <= a.history_.best_epoch < 60
    assert not a.diverged_
    sgd = FiniteMLPRegressor(**{**opts, "random_state": 6}, optimizer="sgd", lr=0.01).fit(X, y)
    assert not np.array_equal(sgd.predict(X[:5]), a.predict(X[:5]))


@parametrize_with_checks(
    [
        NNGPRegressor(depth=1, weight_var=1.0, bias_var=0.1, noise=(1e-3, 1e-1)),
        NNGPClassifier(depth=1, weight_var=1.0, bias_var=0.1, noise=(1e-3, 1e-1)),
        FiniteMLPRegressor(
            width=32, depth=1, lr=0.01, val_fraction=0, max_epochs=40, device="cpu"
        ),
        FiniteMLPClassifier(
            width=32, depth=1, lr=0.01, val_fraction=0, max_epochs=40, device="cpu"
        ),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


BAD = [
    (NNGPRegressor(activation="softplus"), "activation: expected one of"),
    (NNGPRegressor(depth=-1), r"depth: expected a value or a non-empty list of integers >= 0"),
    (NNGPRegressor(depth=[]), r"depth: expected a value or a non-empty list"),
    (NNGPRegressor(weight_var=(1.0, -2.0)), "weight_var: expected .* finite numbers > 0"),
    (NNGPRegressor(bias_var=np.nan), "bias_var: expected .* finite numbers >= 0"),
    (NNGPRegressor(noise=0.0), "noise: expected .* > 0"),
    (NNGPRegressor(selection="aic"), r"selection: expected one of \['evidence', 'loo'\]"),
    (FiniteMLPRegressor(width=0), "width: expected int >= 1"),
    (FiniteMLPRegressor(optimizer="lbfgs"), r"optimizer: expected \['adam', 'sgd'\]"),
    (FiniteMLPRegressor(activation="gelu"), "activation: expected"),
    (FiniteMLPRegressor(val_fraction=1.0), r"val_fraction: expected in \[0, 1\)"),
]


@pytest.mark.parametrize(("estimator", "message"), BAD)
def test_bad_parameters_name_the_parameter(estimator, message):
    X, y = toy(n=20)
    with pytest.raises(InputError, match=message):
        clone(estimator).fit(X, y)


BAD_DATA = [
    (np.full((5, 2), np.nan), np.arange(5.0), "Input X contains NaN"),
    (np.ones((5, 2)), [1, 2, np.inf, 4, 5], "Input y contains infinity"),
    (np.ones((5, 2)), np.arange(4.0), "inconsistent numbers of samples"),
    (np.ones((1, 2)), [1.0], "expected at least 2 samples; found 1 sample"),
    (np.ones(5), np.arange(5.0), "Expected 2D array, got 1D array"),
]


@pytest.mark.parametrize(("X", "y", "message"), BAD_DATA)
def test_bad_data_is_an_input_error(X, y, message):
    with pytest.raises(InputError, match=message):
        NNGPRegressor(**FIXED).fit(X, y)


def test_prediction_needs_the_fitted_number_of_features_and_finite_inputs():
    X, y = toy()
    m = NNGPRegressor(**FIXED).fit(X, y)
    with pytest.raises(InputError, match="X has 3 features, but NNGPRegressor is expecting 4"):
        m.predict(X[:, :3])
    with pytest.raises(InputError, match="Input X contains NaN"):
        m.predict(np.where(X[0, 0] == X, np.nan, X))
    with pytest.raises(InputError, match="at least 2 classes; found 1 class"):
        NNGPClassifier(**FIXED).fit(X, np.zeros(len(X)))


@pytest.mark.parametrize("selection", ["evidence", "loo"])
def test_a_single_setting_is_scored_like_a_search(selection):
    """One setting skips the eigendecomposition; its score equals the search's."""
    X, y = toy(n=40)
    one = NNGPRegressor(**FIXED, noise=0.1, selection=selection).fit(X, y)
    two = NNGPRegressor(**FIXED, noise=(0.1, 1e3), selection=selection).fit(X, y)
    assert two.noise_ == 0.1
    assert one.selection_score_ == pytest.approx(two.selection_score_, rel=1e-9)
    assert one.selection_results_[selection].tolist() == [one.selection_score_]
