"""nngp_kernel: closed forms and the numerical series against independent integrals,
the reference implementation's values, wide random networks, blocks, bad input."""

import numpy as np
import pytest
from scipy import integrate
from scipy.special import erf

from neuroseq.errors import InputError
from neuroseq.nngp import nngp_kernel
from neuroseq.nngp.kernels import KernelSpec, activation_fn, kernel_diagonal, kernel_stack

# The reference integrator asks scipy for more digits than double precision always gives;
# its round-off warnings are about the reference, which agrees to 1e-13 where it matters.
pytestmark = pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")

PHI = {"relu": lambda u: max(u, 0.0), "erf": erf, "tanh": np.tanh}


def expectation_by_quadrature(phi, k1, k2, k12):
    """E[phi(u) phi(v)], (u, v) ~ N(0, [[k1, k12], [k12, k2]]), by adaptive nested quadrature.

    Written independently of the package: u = s1 z1, v = s2 (rho z1 + sqrt(1 - rho^2) z2),
    Gauss-Kronrod on [-12, 12] (the Gaussian mass outside is < 1e-32), split at the kinks.
    """
    s1, s2 = np.sqrt(k1), np.sqrt(k2)
    rho = k12 / (s1 * s2)
    g = lambda z: np.exp(-z * z / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    opts = dict(epsabs=1e-15, epsrel=1e-13, limit=200)
    if abs(rho) >= 1 - 1e-15:  # one-dimensional: v = sign(rho) s2 z1
        return integrate.quad(
            lambda z: g(z) * phi(s1 * z) * phi(np.sign(rho) * s2 * z), -12, 12, points=[0], **opts
        )[0]
    r = np.sqrt(1 - rho**2)

    def inner(z1):
        kink = -rho * z1 / r
        f = lambda z2: g(z2) * phi(s2 * (rho * z1 + r * z2))  # noqa: E731
        return integrate.quad(f, -12, 12, points=[kink] if abs(kink) < 12 else None, **opts)[0]

    return integrate.quad(lambda z: g(z) * phi(s1 * z) * inner(z), -12, 12, points=[0], **opts)[0]


def reference_kernel(X, X2, depth, activation, w, b):
    """The recursion written out entry by entry, every expectation by quadrature."""
    Z = np.vstack([X2, X])
    K = b + w * Z @ Z.T / Z.shape[1]
    for _ in range(depth):
        E = np.array(
            [
                [
                    expectation_by_quadrature(PHI[activation], K[i, i], K[j, j], K[i, j])
                    for j in range(len(Z))
                ]
                for i in range(len(Z))
            ]
        )
        K = b + w * E
    return K[: len(X2), len(X2) :]


CASES = [  # (k1, k2, k12): unequal variances, both signs, correlations near +-1 and 0
    (1.0, 2.0, 0.5),
    (0.3, 1.7, -0.6),
    (2.0, 2.0, 1.99),
    (0.5, 3.0, -1.2),
    (1.0, 1.0, 0.0),
    (4.0, 0.25, 0.999),
]


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize(("k1", "k2", "k12"), CASES)
def test_closed_forms_equal_an_independent_integral_to_1e_10(activation, k1, k2, k12):
    w, b = 1.0, 0.0  # one layer from a given K^0: K^1 = E[phi(u) phi(v)]
    spec = KernelSpec(activation, w, b)
    # Two 1-d inputs whose K^0 is the case's covariance: x = sqrt(k) * unit vectors.
    theta = np.arccos(k12 / np.sqrt(k1 * k2))
    X = np.array([[np.sqrt(k1), 0.0]]) * np.sqrt(2)
    X2 = np.array([[np.sqrt(k2) * np.cos(theta), np.sqrt(k2) * np.sin(theta)]]) * np.sqrt(2)
    value = kernel_stack(X, X2, [1], spec)[0][0, 0]
    ref = expectation_by_quadrature(PHI[activation], k1, k2, k12)
    assert abs(value - ref) <= 1e-10 * abs(ref) + 1e-15


@pytest.mark.parametrize(("k1", "k2", "k12"), CASES)
def test_tanh_series_equals_the_integral_far_within_1e_5(k1, k2, k12):
    spec = KernelSpec("tanh", 1.0, 0.0)
    theta = np.arccos(k12 / np.sqrt(k1 * k2))
    X = np.array([[np.sqrt(k1), 0.0]]) * np.sqrt(2)
    X2 = np.array([[np.sqrt(k2) * np.cos(theta), np.sqrt(k2) * np.sin(theta)]]) * np.sqrt(2)
    value = kernel_stack(X, X2, [1], spec)[0][0, 0]
    assert abs(value - expectation_by_quadrature(np.tanh, k1, k2, k12)) < 1e-8


@pytest.mark.parametrize(
    ("activation", "depth", "tol"), [("relu", 3, 1e-10), ("erf", 2, 1e-10), ("tanh", 3, 1e-5)]
)
def test_whole_recursion_equals_an_entrywise_reference(activation, depth, tol):
    rng = np.random.default_rng(1)
    X, X2 = rng.normal(size=(2, 5)), rng.normal(size=(1, 5))
    K = nngp_kernel(X, X2, depth=depth, activation=activation, weight_var=1.6, bias_var=0.2)
    ref = reference_kernel(X, X2, depth, activation, 1.6, 0.2)
    assert K.shape == (1, 2)
    if activation == "tanh":
        assert np.abs(K - ref).max() < tol
    else:
        assert np.abs(K - ref).max() <= tol * np.abs(ref).max()


# Measured once with neural-tangents 0.6.5 (jax 0.5.3, x64): stax.serial of `depth` x
# [Dense(W_std=sqrt(w), b_std=sqrt(b)), Relu() or Erf()] and a Dense readout; kernel_fn(X2, X,
# "nngp"). See benchmarks/nngp.py for the comparison on random inputs.
X_NT = np.array([[1.0, -0.5, 2.0], [0.3, 0.8, -1.2], [-2.0, 0.1, 0.4]])
X2_NT = np.array([[0.5, 0.5, 0.5], [1.0, -0.4, 2.1]])
NEURAL_TANGENTS = {
    ("relu", 3, 1.5, 0.1): [
        [0.6190204220826419, 0.4244815404814317, 0.47016675714858625],
        [1.4125532877040257, 0.6215942435747508, 0.8218204931238238],
    ],
    ("erf", 2, 2.0, 0.3): [
        [0.9588935695031241, 0.6615039895913122, 0.4242101228104995],
        [1.4188116218223783, 0.1285330091440446, 0.38342823518610664],
    ],
}


@pytest.mark.parametrize("key", list(NEURAL_TANGENTS))
def test_same_values_as_the_reference_implementation(key):
    activation, depth, w, b = key
    K = nngp_kernel(X_NT, X2_NT, depth=depth, activation=activation, weight_var=w, bias_var=b)
    ref = np.array(NEURAL_TANGENTS[key])
    np.testing.assert_allclose(K, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_wide_random_networks_have_the_kernel_as_output_covariance(activation):
    """Monte Carlo: the readouts of many wide networks drawn from the prior."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 6))
    depth, w, b, width, n_nets = 2, 1.8, 0.3, 1024, 24
    phi = activation_fn(activation)
    samples = []
    for _ in range(n_nets):
        h, fan_in = X, X.shape[1]
        for _ in range(depth):
            W = rng.normal(0, np.sqrt(w / fan_in), (fan_in, width))
            h = phi(h @ W + rng.normal(0, np.sqrt(b), width))
            fan_in = width
        # Readout units are independent given the last layer: many readouts per network.
        out = h @ rng.normal(0, np.sqrt(w / width), (width, 256)) + rng.normal(0, np.sqrt(b), 256)
        samples.append(out @ out.T / out.shape[1])  # this network's output covariance
    C = np.array(samples)
    empirical, se = C.mean(axis=0), C.std(axis=0, ddof=1) / np.sqrt(n_nets)
    K = nngp_kernel(X, depth=depth, activation=activation, weight_var=w, bias_var=b)
    # Within four standard errors, plus the finite-width bias, O(1 / width).
    assert np.all(np.abs(empirical - K) < 4 * se + 2.0 / width * np.abs(K))
    assert np.all(se < 0.03 * np.abs(K).max())  # the check has power


@pytest.mark.parametrize(
    ("activation", "atol"), [("relu", 1e-14), ("erf", 1e-14), ("linear", 1e-14), ("tanh", 1e-8)]
)
def test_blocks_symmetry_and_diagonal_agree(activation, atol):
    """Any block size gives the same kernel; K(X, X) is symmetric, PSD, and agrees with
    K(X, X2=X), the transpose of K(X2, X) and the diagonal recursion (within the series'
    tolerance for tanh off the diagonal)."""
    rng = np.random.default_rng(2)
    X, X2 = rng.normal(size=(37, 5)), rng.normal(size=(11, 5))
    opts = dict(depth=3, activation=activation, weight_var=1.3, bias_var=0.2)
    K = nngp_kernel(X, **opts)
    assert K.dtype == np.float64
    assert np.array_equal(K, K.T)
    np.testing.assert_allclose(nngp_kernel(X, block_elements=50, **opts), K, rtol=1e-13)
    np.testing.assert_allclose(nngp_kernel(X, X, **opts), K, rtol=1e-12, atol=atol)
    cross = nngp_kernel(X, X2, **opts)
    assert cross.shape == (11, 37)
    np.testing.assert_allclose(nngp_kernel(X2, X, block_elements=7, **opts), cross.T, rtol=1e-12)
    spec = KernelSpec(activation, 1.3, 0.2)
    np.testing.assert_allclose(kernel_diagonal(X, [3], spec)[0], np.diag(K), rtol=1e-12)
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()


def test_depth_zero_is_the_linear_input_kernel():
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    K = nngp_kernel(X, depth=0, activation="relu", weight_var=2.0, bias_var=0.5)
    np.testing.assert_allclose(K, 0.5 + 2.0 * X @ X.T / 2)


def test_a_series_or_a_rule_that_does_not_converge_is_an_error_not_a_silent_truncation():
    # Pre-activation variance 9: tanh needs about 150 Hermite terms for 1e-9.
    with pytest.raises(InputError, match="within tol=1e-09 in at most max_terms=64 terms"):
        nngp_kernel(np.array([[3.0], [-2.0]]), depth=1, activation="tanh", max_terms=64)
    # Variance 900: tanh is a step at the quadrature's resolution.
    with pytest.raises(InputError, match="moments converged within 16384 nodes"):
        nngp_kernel(np.array([[30.0], [-20.0]]), depth=1, activation="tanh")


BAD = [
    ({"activation": "softplus"}, "activation: expected one of"),
    ({"activation": 3}, "activation: expected a name or a callable"),
    ({"depth": -1}, "depth: expected an integer >= 0; found -1"),
    ({"depth": 1.5}, "depth: expected an integer >= 0"),
    ({"weight_var": 0.0}, "weight_var: expected a finite number > 0"),
    ({"bias_var": -0.1}, "bias_var: expected a finite number >= 0"),
    ({"X": [[1.0, np.nan]]}, r"X: expected finite values; found 1 NaN/inf"),
    ({"X": [[1.0, np.inf]]}, r"X: expected finite values"),
    ({"X": [1.0, 2.0]}, r"expected a 2-d array .* found shape \(2,\)"),
    ({"X": np.zeros((0, 3))}, r"found shape \(0, 3\)"),
    ({"X2": [[1.0, 2.0, 3.0]]}, "X2: expected 2 features like X; found 3 features"),
    ({"X2": [["a", "b"]]}, "X2: expected a numeric 2-d array"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_input_names_the_argument(change, message):
    args = {"X": [[1.0, 2.0], [0.5, -1.0]], "X2": None, "depth": 2, "activation": "relu"}
    args.update(change)
    X, X2 = args.pop("X"), args.pop("X2")
    with pytest.raises(InputError, match=message):
        nngp_kernel(X, X2, **args)
