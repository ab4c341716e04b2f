"""oi-VAE estimator: the proximal step, the paper's bars case, masking, determinism."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from neuroseq.errors import InputError
from neuroseq.latent import OIVAE
from neuroseq.latent.oivae_data import simulate_bars
from neuroseq.latent.oivae_training import ProximalColumnRMSprop, group_soft_threshold

#: The bars case as in Ainsworth et al. (2018): one affine generator per image row fed by
#: a 1-d projection of z, 16 latents for 8 true ones.
BARS = dict(
    n_latents=16,
    group_dim=1,
    hidden=0,
    lr=1e-2,
    lr_w=1e-2,
    batch_size=128,
    max_epochs=150,
    warmup_epochs=20,
    relax_epochs=0,
    device="cpu",
    random_state=0,
)
TINY = dict(n_latents=3, group_dim=1, hidden=4, max_epochs=4, warmup_epochs=1, relax_epochs=2)


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(False)


def test_group_soft_threshold_is_the_prox_of_the_column_norm():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4, 5))
    W[1, :, 2] *= 1e-3  # a column below the threshold
    threshold = rng.uniform(0.1, 0.5, (3, 5))
    out = torch.tensor(W)
    group_soft_threshold(out, torch.tensor(threshold))
    norm = np.linalg.norm(W, axis=1, keepdims=True)
    expected = W / norm * np.clip(norm - threshold[:, None, :], 0, None)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert (out[1, :, 2] == 0).all()


@pytest.mark.parametrize("lr", [1e-2, 5e-2])
def test_proximal_steps_reach_the_group_lasso_optimum_for_any_step_size(lr):
    """min_w 0.5 ||w - a||^2 + t ||w||: w* = a (1 - t / ||a||)_+, column by column.

    The per-column adaptive steps change how fast, not where: the fixed point is the
    penalised optimum, and a column whose gradient at 0 is below t stays exactly 0.
    """
    a = torch.tensor([[[3.0, 0.3], [4.0, 0.4]]])  # column norms 5 and 0.5, G=1, d=2, K=2
    t = 1.0
    W = torch.nn.Parameter(torch.zeros_like(a))
    prox = ProximalColumnRMSprop(W, lr=lr)
    for _ in range(int(20 / lr)):
        W.grad = W.detach() - a
        prox.step(t)
    np.testing.assert_allclose(W.detach()[0, :, 0].numpy(), [3.0 * 0.8, 4.0 * 0.8], atol=1e-3)
    assert (W.detach()[0, :, 1] == 0).all()


def test_lambda_is_on_the_summed_elbo_scale():
    """lambda weighs a prior that counts once against an ELBO summed over examples.

    Four copies of the data with 4 lambda give the same fit as the data with lambda (the
    per-example objective is the same); four copies with the same lambda prune less.
    """
    X, groups, _ = simulate_bars(300, size=4, noise=0.5, seed=3)
    copies = np.tile(X, (4, 1))
    opts = dict(
        n_latents=6,
        group_dim=1,
        hidden=0,
        lr=1e-2,
        lr_w=1e-2,
        relax_epochs=0,
        batch_size=100,
        device="cpu",
    )
    lam = 20.0 * len(X)
    short = OIVAE(lam=lam, max_epochs=30, warmup_epochs=5, **opts).fit(X, groups)
    same = OIVAE(lam=lam, max_epochs=8, warmup_epochs=2, **opts).fit(copies, groups)
    scaled = OIVAE(lam=4 * lam, max_epochs=8, warmup_epochs=2, **opts).fit(copies, groups)
    assert 0 < short.active_.sum() < 6
    np.testing.assert_array_equal(short.active_, scaled.active_)
    np.testing.assert_allclose(short.w_norm_, scaled.w_norm_, atol=0.06)
    assert same.active_.sum() > short.active_.sum()


def row_loadings(est):
    """Per image row: the share of its total column norm on its strongest latent."""
    w = est.w_norm_
    return w.max(0) / w.sum(0), w.argmax(0)


def test_bars_oivae_finds_one_latent_per_row_and_a_plain_vae_does_not():
    X, groups, _ = simulate_bars(2000, seed=0)
    X_test, _, _ = simulate_bars(500, seed=1)
    oivae = OIVAE(lam=6000.0, **BARS).fit(X, groups, X_heldout=X_test)
    vae = OIVAE(lam=0.0, **BARS).fit(X, groups, X_heldout=X_test)

    share, top = row_loadings(oivae)
    assert 7 <= oivae.active_.sum() <= 9, oivae.w_norm_.max(1)
    assert share.min() > 0.8, share  # each row loads mainly on one latent ...
    assert np.unique(top).size == 8  # ... its own
    assert set(top) <= set(np.flatnonzero(oivae.active_))

    vae_share, _ = row_loadings(vae)
    assert vae_share.mean() < 0.5, vae_share  # rows spread over several latents
    assert (vae_share > 0.8).sum() <= 1
    # Both fit the images: the sparsity is not bought with a worse model.
    assert oivae.score(X_test) > vae.score(X_test) - 5.0
    r2 = oivae.recon_r2(X_test)
    assert r2.min() > 0.95, r2
    # The held-out ELBO rose during training (the curve the report draws).
    assert oivae.history_.heldout_elbo[-1] > oivae.history_.heldout_elbo[0] + 100


def test_missing_entries_are_left_out_not_filled():
    X, groups, _ = simulate_bars(400, size=4, seed=2)
    holed = X.copy()
    holed[:50, :4] = np.nan  # row 0 of the first 50 images unknown
    est = OIVAE(**TINY).fit(holed, groups)
    assert np.isfinite(est.transform(holed)).all()
    assert np.isfinite(est.elbo(holed)).all()
    assert np.isfinite(est.reconstruct(holed)).all()
    filled = holed.copy()
    filled[:50, :4] = 0.0  # a made-up value is not the same as a missing one
    assert not np.allclose(est.transform(holed)[:50], est.transform(filled)[:50])
    np.testing.assert_array_equal(est.transform(holed)[50:], est.transform(filled)[50:])
    # The likelihood never reads an entry marked missing, whatever it holds.
    net = est.net_
    x = torch.randn(5, 16)
    observed = torch.ones(5, 16, dtype=torch.bool)
    observed[:, :4] = False
    mean = net.decode(torch.zeros(5, 3))
    other = x.clone()
    other[:, :4] = 1e6
    np.testing.assert_array_equal(
        net.log_likelihood(x, observed, mean).detach().numpy(),
        net.log_likelihood(other, observed, mean).detach().numpy(),
    )
    # Recovered R2 is scored on observed entries only (finite despite the holes).
    assert np.isfinite(est.recon_r2(holed)).all()


def test_fixed_seed_is_deterministic_on_cpu():
    X, groups, _ = simulate_bars(300, size=4, seed=0)
    a = OIVAE(lam=50.0, random_state=3, **TINY).fit(X, groups)
    b = OIVAE(lam=50.0, random_state=3, **TINY).fit(X, groups)
    c = OIVAE(lam=50.0, random_state=4, **TINY).fit(X, groups)
    np.testing.assert_array_equal(a.w_norm_, b.w_norm_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert not np.array_equal(a.w_norm_, c.w_norm_)
    assert a.device_.type in ("cpu", "cuda")


def test_scikit_learn_contract():
    est = OIVAE(**TINY)
    assert clone(est).get_params() == est.get_params()
    assert not [k for k in vars(est) if k.endswith("_")]
    X, groups, _ = simulate_bars(200, size=4, seed=0)
    fitted = est.fit(X, groups)
    assert fitted is est
    assert est.transform(X).shape == (200, 3)
    assert est.w_norm_.shape == (3, 4)
    assert est.support_.shape == (4, 3)
    assert list(est.groups_) == ["row0", "row1", "row2", "row3"]
    assert len(est.history_.train_elbo) == TINY["max_epochs"] + TINY["relax_epochs"]


@pytest.mark.parametrize(
    ("params", "fit_args", "pattern"),
    [
        ({"n_latents": 0}, {}, r"OIVAE n_latents: expected an int >= 1; found 0"),
        ({"lam": -1.0}, {}, r"OIVAE lam: expected a finite number >= 0; found -1.0"),
        ({"lr": 0.0}, {}, r"OIVAE lr: expected a finite number > 0"),
        ({"active_tol": 1.5}, {}, r"OIVAE active_tol: expected a number in \[0, 1\)"),
        ({}, {"groups": np.repeat(["a"], 16)}, r"groups: expected at least 2 groups"),
        ({}, {"groups": np.repeat(["a", "b"], 4)}, r"groups: expected one label per column"),
        ({}, {"X": np.full((50, 16), np.inf)}, r"X: expected finite values or NaN"),
        ({}, {"X": np.full((50, 16), np.nan)}, r"X: expected at least 2 rows and 2 observed"),
    ],
)
def test_bad_parameters_and_arrays(params, fit_args, pattern):
    X, groups, _ = simulate_bars(50, size=4, seed=0)
    args = {"X": X, "groups": groups, **fit_args}
    with pytest.raises(InputError, match=pattern):
        OIVAE(**{**TINY, **params}).fit(args["X"], args["groups"])
