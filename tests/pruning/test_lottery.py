"""Lottery tickets: masks through training, the schedule, rewinding against its controls."""

import numpy as np
import pytest
import torch

from neuroseq.decoding.networks import ARCHITECTURES
from neuroseq.pruning import INITS, ArrayTask, MLPNet, SequenceTask, find_tickets
from neuroseq.pruning import masks as M
from neuroseq.pruning.lottery import _Steps


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    yield
    torch.use_deterministic_algorithms(False)


def sparse_linear_task(seed=0, n=2000, d=40, max_epochs=25):
    """Two targets, each a linear map of 4 of the 40 inputs, plus a little noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = np.zeros((d, 2))
    W[:4, 0] = [1.0, -0.8, 0.6, 0.5]
    W[4:8, 1] = [0.9, 0.7, -0.6, 0.4]
    y = X @ W + 0.1 * rng.standard_normal((n, 2))
    row = np.arange(n)
    train, val, test = row < 1400, (row >= 1150) & (row < 1400), row >= 1400
    return ArrayTask(
        X, y, train, val, test, hidden=(32, 16), batch_size=64, lr=4e-3,
        max_epochs=max_epochs, patience=4, device="cpu",
    )  # fmt: skip


def sequence_task(n_bins=1200, n_units=12, seed=0):
    """Counts driven by a smooth latent; behaviour a linear map of it (the decoders' case)."""
    rng = np.random.default_rng(seed)
    z = np.zeros((n_bins, 2))
    for t in range(1, n_bins):
        z[t] = 0.95 * z[t - 1] + 0.3 * rng.standard_normal(2)
    X = rng.poisson(np.exp(np.log(0.8) + z @ rng.normal(0, 0.7, (2, n_units)))).astype(np.float32)
    X = (np.log1p(X) - np.log1p(X).mean(0)) / np.log1p(X).std(0)
    y = z @ np.array([[1.0, 0.3], [-0.4, 1.0]])
    b = np.arange(n_bins)
    options = {"d_model": 16, "n_heads": 2, "n_layers": 1, "dim_feedforward": 32, "dropout": 0.0}
    options |= {"window": 32, "batch_size": 16, "max_epochs": 3, "patience": 2, "lr": 3e-3}
    return SequenceTask(
        X, y, b < 900, (b >= 780) & (b < 900), b >= 900, options=options, device="cpu"
    )


def test_remaining_follows_the_schedule_exactly():
    """LeNet-300-100 on 8x8 digits: 20% of each hidden layer a round, 10% of the output."""
    net = MLPNet(64, 10)
    sizes = [p.mask().numel() for p in M.prunable_weights(net)]
    assert sizes == [64 * 300, 300 * 100, 100 * 10]
    expected = M.schedule(sizes, 12, 0.2, 0.1)
    random_net = MLPNet(64, 10)
    rng = np.random.default_rng(0)
    previous = M.masks(random_net)
    for r in range(1, 13):
        M.prune_magnitude(net, 0.2, 0.1)
        counts = M.remaining_counts(net)
        assert list(counts.values()) == expected[r].tolist()
        M.prune_random(random_net, counts, rng)
        assert M.remaining_counts(random_net) == counts
        now = M.masks(random_net)
        for name, mask in now.items():  # nested: a pruned weight never returns
            assert not (mask.bool() & ~previous[name].bool()).any()
        previous = now
    # About (1 - p)^r of each layer is left: 0.8^12 = 6.9% hidden, 0.9^12 = 28% output.
    assert expected[12, 0] / sizes[0] == pytest.approx(0.8**12, abs=1e-3)
    assert expected[12, 2] / sizes[2] == pytest.approx(0.9**12, abs=2e-3)
    assert M.remaining_fraction(net) == pytest.approx(expected[12].sum() / sum(sizes))
    # Magnitude pruning keeps exactly the largest weights of each layer.
    first = M.prunable_weights(net)[0]
    kept = first.original().detach().abs()[first.mask() == 1].min()
    dropped = first.original().detach().abs()[first.mask() == 0].max()
    assert kept >= dropped

    net = MLPNet(64, 10)
    totals = M.schedule(sizes, 6, 0.2, 0.1, scope="global")
    for r in range(1, 7):
        M.prune_magnitude(net, 0.2, 0.1, scope="global")
        assert sum(M.remaining_counts(net).values()) == totals[r]


def _transformer(dropout=0.0):
    torch.manual_seed(0)
    return ARCHITECTURES["transformer"](
        6, 2, d_model=16, n_heads=2, n_layers=2, dim_feedforward=32, dropout=dropout
    )


@pytest.mark.parametrize("train_mode", [False, True])
def test_the_forward_ignores_every_pruned_weight(train_mode):
    """Including attention's out_proj, which MultiheadAttention reads without calling it."""
    net = _transformer()
    M.prune_magnitude(net, 0.6, 0.6)
    names = [p.qualname for p in M.prunable_weights(net)]
    assert "encoder.layers.0.self_attn.out_proj.weight" in names
    assert "encoder.layers.1.self_attn.in_proj_weight" in names
    net.train(train_mode)
    x = torch.randn(3, 20, 6)
    with torch.no_grad():
        before = net(x)
        for p in M.prunable_weights(net):  # garbage in every pruned entry of every tensor
            orig = p.original()
            orig[p.mask() == 0] = 1e3 * torch.randn(int((p.mask() == 0).sum()))
        assert torch.equal(net(x), before)
        p = M.prunable_weights(net)[3]  # a surviving weight does change the output
        p.original()[p.mask() == 1] += 1.0
        assert not torch.allclose(net(x), before)


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_pruned_weights_are_exactly_zero_after_every_optimiser_step(kind):
    task = sparse_linear_task(max_epochs=3) if kind == "mlp" else sequence_task()
    sizes = [p.mask().numel() for p in M.prunable_weights(task.build(0))]
    totals = M.schedule(sizes, 2, 0.5, 0.3).sum(1)
    seen, first, last = [], {}, {}

    def check(net, epoch):
        current = M.masks(net)
        weights = M.effective_weights(net)
        for name, w in weights.items():
            assert torch.equal(w[current[name] == 0], torch.zeros_like(w[current[name] == 0]))
        total = sum(int(m.sum()) for m in current.values())
        seen.append(total)
        first.setdefault(total, weights)
        last[total] = weights

    curve = find_tickets(task, n_rounds=2, rate=0.5, output_rate=0.3, seed=0, on_step=check)
    assert len(seen) == curve.steps.sum() - 2 * curve.steps[0, 0]  # round 0 trained once
    assert set(seen) == set(totals.tolist())
    assert curve.counts.sum(1).tolist() == totals.tolist()
    for total in totals:  # the survivors did train
        name = next(iter(first[total]))
        assert not torch.equal(first[total][name], last[total][name])


def test_rewinding_puts_back_the_kept_values_and_keeps_the_masks():
    task = sparse_linear_task(max_epochs=2)
    net = M.enable_masks(task.build(0))
    start = M.snapshot(net)
    steps = _Steps(keep_at=7)
    task.fit(net, 0, steps)
    assert set(steps.kept) == set(start)
    assert not torch.equal(steps.kept["layers.0.weight"], start["layers.0.weight"])
    M.prune_magnitude(net, 0.5, 0.5)
    masks = M.masks(net)
    for values in (start, steps.kept):
        M.rewind(net, values)
        for name, w in M.effective_weights(net).items():
            assert torch.equal(w, values[name] * masks[name])
        assert torch.equal(M.masks(net)["layers.2.weight"], masks["layers.2.weight"])
        biases = dict(net.named_parameters())["layers.0.bias"]
        assert torch.equal(biases, values["layers.0.bias"])


def test_rewinding_keeps_the_score_where_random_pruning_loses_it():
    """A known sparse linear map (8 of 40 inputs matter), 3 seeds, down to ~3% of weights."""
    task = sparse_linear_task()
    curves = [find_tickets(task, n_rounds=4, rate=0.6, output_rate=0.3, seed=s) for s in range(3)]
    remaining = curves[0].remaining
    assert remaining[-1] < 0.04
    score = np.stack([c.score.mean(2) for c in curves])  # (seed, round, init)
    rewind, reinit, random = (score[:, :, INITS.index(i)] for i in INITS)
    dense = score[:, 0, 0]
    assert (dense > 0.97).all()
    # The rewound ticket stays at the dense network's R2 down to 3% of the weights.
    assert (rewind >= dense[:, None] - 0.03).all(), rewind
    # Random pruning at the same per-layer sizes loses the map at the sparsest rounds.
    assert (rewind[:, -2:] > random[:, -2:] + 0.3).all(), (rewind, random)
    # The same mask re-initialised keeps more than a random mask. Against rewinding it
    # does not separate reliably here (measured, seeds 0-2 at 3%: R2 0.59, 0.49, 0.98
    # against rewinding's 0.99; with 40 epochs instead of 25 one seed had re-init above
    # rewinding), so no claim on that order is made.
    assert reinit[:, -1].mean() > random[:, -1].mean() + 0.3
    # Every training stopped early or at its limit; the best step is never after the last.
    for c in curves:
        assert (c.early_stop_iteration <= c.steps).all()
        assert (c.early_stop_iteration > 0).all()


def test_a_fixed_seed_gives_the_same_search():
    task = sequence_task()
    a, b = (find_tickets(task, n_rounds=1, rate=0.5, output_rate=0.3, seed=4) for _ in range(2))
    c = find_tickets(task, n_rounds=1, rate=0.5, output_rate=0.3, seed=5)
    for name in ("score", "early_stop_iteration", "steps", "counts"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.score, c.score)


def test_global_ranking_and_late_rewinding_on_the_transformer():
    task = sequence_task()
    sizes = [p.mask().numel() for p in M.prunable_weights(task.build(0))]
    curve = find_tickets(
        task, n_rounds=2, rate=0.4, output_rate=0.1, scope="global", rewind_step=5, seed=0
    )
    assert curve.counts.sum(1).tolist() == M.schedule(sizes, 2, 0.4, 0.1, "global").tolist()
    # One ranking over all tensors: layers end up pruned at different rates.
    per_tensor = curve.counts[-1] / curve.counts[0]
    assert per_tensor.max() - per_tensor.min() > 0.05
    assert np.isfinite(curve.score).all()
