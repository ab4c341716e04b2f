"""The NNGP kernel: the output covariance of an infinitely wide deep network at its prior.

A fully connected network with ``depth`` hidden layers, weights
``W ~ N(0, weight_var / fan_in)`` and biases ``b ~ N(0, bias_var)`` becomes, as every
hidden width goes to infinity, a Gaussian process whose covariance follows a recursion
over layers (Lee et al. 2018). The conventions are those of the reference
implementation, neural-tangents' ``stax`` (Novak et al. 2020), so kernels can be
compared entry by entry:

.. math::

    K^0(x, x') = \\sigma_b^2 + \\sigma_w^2 \\, x \\cdot x' / d_{in}, \\qquad
    K^l(x, x') = \\sigma_b^2 + \\sigma_w^2 \\,
        \\mathbb{E}_{(u, v) \\sim N(0, K^{l-1})}[\\phi(u)\\phi(v)],

and ``nngp_kernel(..., depth=L)`` returns ``K^L``, the readout's kernel after ``L``
nonlinearities (``depth=0`` is the linear model's kernel ``K^0``).

The expectation has closed forms for ReLU (the arc-cosine kernel of degree 1, Cho & Saul
2009, which is twice this expectation) and erf (Williams 1997); any other activation is
integrated numerically through its Hermite expansion (Mehler's formula), truncated where
a certified bound on the remainder falls below ``tol``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import erf, roots_hermitenorm

from neuroseq.errors import InputError

#: Activations with a closed-form expectation, and those integrated numerically by name.
CLOSED_FORMS = ("relu", "erf", "linear")
NUMERICAL = {"tanh": np.tanh, "sigmoid": lambda u: 0.5 * (1.0 + np.tanh(0.5 * u))}
ACTIVATIONS = (*CLOSED_FORMS, *NUMERICAL)

#: Most Gauss-Hermite nodes tried for a numerical activation's moments.
MAX_NODES = 1 << 14
#: Elements of one block of the kernel (rows x columns); a few such arrays live at once.
DEFAULT_BLOCK_ELEMENTS = 1 << 22  # 32 MB of float64 per array


# --------------------------------------------------------------------------------------
# Expectations E[phi(u) phi(v)] for (u, v) ~ N(0, [[k1, k12], [k12, k2]])
# --------------------------------------------------------------------------------------


class _Expectation:
    """One activation's dual: the diagonal and the cross terms of E[phi(u) phi(v)]."""

    def diag(self, k: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, k_rows: np.ndarray, k_cols: np.ndarray) -> tuple[Any, Any]:
        """Per-point state of this layer for the rows and the columns (default: k)."""
        return k_rows, k_cols

    def cross(self, k12: np.ndarray, rows: Any, cols: Any) -> np.ndarray:
        """The expectation for a block; may overwrite ``k12``."""
        raise NotImplementedError

    @staticmethod
    def take(state: Any, index: slice) -> Any:
        return state[index]


class _Linear(_Expectation):
    def diag(self, k):
        return k.copy()

    def cross(self, k12, rows, cols):
        return k12


def _correlation(k12: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """k12 / scale, clipped to [-1, 1], in place; 0 where a point has zero variance."""
    if (scale > 0).all():
        np.divide(k12, scale, out=k12)
    else:
        np.divide(k12, scale, out=k12, where=scale > 0)
        k12[scale <= 0] = 0.0
    return np.clip(k12, -1.0, 1.0, out=k12)


class _Relu(_Expectation):
    """E[relu(u) relu(v)] = sqrt(k1 k2) / (2 pi) (sin t + (pi - t) cos t), cos t = rho."""

    def diag(self, k):
        return 0.5 * k

    def prepare(self, k_rows, k_cols):
        return np.sqrt(k_rows), np.sqrt(k_cols)

    def cross(self, k12, rows, cols):
        scale = np.multiply.outer(rows, cols)
        c = _correlation(k12, scale)
        t = np.arccos(c)
        np.subtract(np.pi, t, out=t)
        t *= c  # (pi - theta) cos(theta)
        np.multiply(c, c, out=c)
        np.subtract(1.0, c, out=c)
        np.sqrt(c, out=c)  # sin(theta)
        c += t
        scale *= 1.0 / (2.0 * np.pi)
        c *= scale
        return c


class _Erf(_Expectation):
    """E[erf(u) erf(v)] = (2 / pi) arcsin(2 k12 / sqrt((1 + 2 k1)(1 + 2 k2)))."""

    def diag(self, k):
        return (2.0 / np.pi) * np.arcsin(2.0 * k / (1.0 + 2.0 * k))

    def prepare(self, k_rows, k_cols):
        return np.sqrt(1.0 + 2.0 * k_rows), np.sqrt(1.0 + 2.0 * k_cols)

    def cross(self, k12, rows, cols):
        scale = np.multiply.outer(rows, cols)
        k12 *= 2.0
        c = _correlation(k12, scale)
        np.arcsin(c, out=c)
        c *= 2.0 / np.pi
        return c


@lru_cache(maxsize=4)
def _hermite_table(n_nodes: int, n_terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes z, sqrt(weights) and U[q, n] = sqrt(w_q) h_n(z_q).

    ``h_n`` are the Hermite polynomials orthonormal under N(0, 1), built by their
    three-term recursion on the weighted values so nothing overflows; the columns of
    ``U`` are orthonormal for ``n < n_nodes`` (discrete orthogonality of the rule).
    """
    z, w = roots_hermitenorm(n_nodes)
    root_w = np.sqrt(w / w.sum())
    U = np.empty((n_nodes, n_terms))
    U[:, 0] = root_w
    if n_terms > 1:
        U[:, 1] = z * root_w
    for n in range(1, n_terms - 1):
        U[:, n + 1] = (z * U[:, n] - math.sqrt(n) * U[:, n - 1]) / math.sqrt(n + 1)
    return z, root_w, U


class _Hermite(_Expectation):
    """Any activation, through its Hermite expansion (Mehler's formula).

    With ``s_i = sqrt(k_ii)`` and ``a_n(s) = E[phi(s z) h_n(z)]`` (z ~ N(0, 1), ``h_n``
    orthonormal Hermite polynomials),

        E[phi(u) phi(v)] = sum_n rho^n a_n(s_1) a_n(s_2),   rho = k12 / (s_1 s_2),

    and Parseval gives E[phi(s z)^2] = sum_n a_n(s)^2. The remainder after ``T`` terms is
    at most ``|rho|^(T+1) sqrt(r_1 r_2)`` (Cauchy-Schwarz), ``r_i`` the part of
    E[phi^2] the first ``T`` terms leave out; ``T`` grows until every ``r_i <= tol``.
    Coefficients come from Gauss-Hermite quadrature whose node count doubles until they
    move by less than ``tol / 10``.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], tol: float, max_terms: int):
        self.fn = fn
        self.tol = tol
        self.max_terms = max_terms

    def _rule(self, s: np.ndarray, n_terms: int, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients a_n(s) (n < n_terms) and E[phi(s z)^2] with an n_nodes-point rule."""
        z, root_w, U = _hermite_table(n_nodes, n_terms)
        coef, second = np.empty((len(s), n_terms)), np.empty(len(s))
        chunk = max(1, (1 << 21) // n_nodes)  # bounds the values array at ~16 MB
        for i in range(0, len(s), chunk):
            values = np.asarray(self.fn(np.multiply.outer(s[i : i + chunk], z)), dtype=np.float64)
            if not np.isfinite(values).all():
                raise InputError(
                    "nngp_kernel",
                    "activation",
                    "finite values at the quadrature nodes",
                    f"NaN/inf for pre-activation std up to {s.max():.3g}",
                )
            values *= root_w
            coef[i : i + chunk] = values @ U
            second[i : i + chunk] = np.einsum("iq,iq->i", values, values)
        return coef, second

    def _moments(self, s: np.ndarray, n_terms: int) -> tuple[np.ndarray, np.ndarray]:
        """The rule's nodes double until nothing moves by more than tol / 10.

        Gauss-Hermite quadrature of a function analytic only in a strip (tanh has poles
        at +-i pi / 2s) converges like exp(-c sqrt(nodes)), so the node count is found
        by doubling, not fixed; distinct variances are integrated once.
        """
        s_unique, inverse = np.unique(s, return_inverse=True)
        n_nodes = max(2 * n_terms + 64, 128, getattr(self, "_nodes", 0))
        coef, second = self._rule(s_unique, n_terms, n_nodes)
        while True:
            if n_nodes > MAX_NODES:
                raise InputError(
                    "nngp_kernel",
                    "activation",
                    f"Gauss-Hermite moments converged within {MAX_NODES} nodes",
                    f"no convergence at pre-activation std up to {s.max():.3g}",
                )
            finer = self._rule(s_unique, n_terms, 2 * n_nodes)
            change = max(np.abs(finer[0] - coef).max(), np.abs(finer[1] - second).max())
            coef, second = finer
            if change <= 0.1 * self.tol:
                break
            n_nodes *= 2
        self._nodes = n_nodes  # later layers start from the count that sufficed
        return coef[inverse], second[inverse]

    def diag(self, k):
        return self._moments(np.sqrt(k), 2)[1]

    def prepare(self, k_rows, k_cols):
        same = k_rows is k_cols
        s = np.sqrt(k_rows if same else np.concatenate([k_rows, k_cols]))
        n_terms = 32
        while True:
            coef, second = self._moments(s, n_terms)
            # Terms that are zero for every point (all even ones for an odd activation)
            # are skipped; their whole size counts against the budget.
            size = np.max(coef**2, axis=0)
            dropped = np.cumsum(np.where(size <= 1e-3 * self.tol / n_terms, size, 0.0))
            remainder = second - np.cumsum(coef**2, axis=1).T  # (n_terms, n_points)
            ok = np.flatnonzero(remainder.max(axis=1) + dropped <= self.tol)
            if ok.size:
                keep = np.flatnonzero(size[: ok[0] + 1] > 1e-3 * self.tol / n_terms)
                break
            if n_terms >= self.max_terms:
                raise InputError(
                    "nngp_kernel",
                    "activation",
                    f"a Hermite expansion within tol={self.tol:g} in at most "
                    f"max_terms={self.max_terms} terms",
                    f"a remainder of {remainder[-1].max():.3g} at layer variance up to "
                    f"{s.max() ** 2:.3g} (standardise the inputs or lower weight_var)",
                )
            n_terms = min(2 * n_terms, self.max_terms)
        if keep.size == 0:  # phi = 0 almost everywhere: every expectation is 0
            keep = np.array([0])
        coef = coef[:, keep]
        n = len(k_rows)
        rows = (s[:n], coef[:n], keep)
        return rows, rows if same else (s[n:], coef[n:], keep)

    @staticmethod
    def take(state, index):
        return state[0][index], state[1][index], state[2]

    def cross(self, k12, rows, cols):
        (s_rows, a_rows, orders), (s_cols, a_cols, _) = rows, cols
        rho = _correlation(k12, np.multiply.outer(s_rows, s_cols))
        # Horner's scheme in rho over the kept orders: one outer product and one
        # multiply-add per term, rho^gap precomputed for the gaps that occur.
        gaps = np.diff(orders)
        power = {g: rho**g for g in np.unique(gaps)} if gaps.size else {}
        out = np.multiply.outer(a_rows[:, -1], a_cols[:, -1])
        term = np.empty_like(out)
        for j in range(len(orders) - 2, -1, -1):
            out *= power[gaps[j]]
            np.multiply.outer(a_rows[:, j], a_cols[:, j], out=term)
            out += term
        if orders[0] > 0:
            out *= rho ** orders[0]
        return out


def _expectation(activation: str | Callable, tol: float, max_terms: int) -> _Expectation:
    if callable(activation):
        return _Hermite(activation, tol, max_terms)
    closed = {"relu": _Relu, "erf": _Erf, "linear": _Linear}
    if activation in closed:
        return closed[activation]()
    if activation in NUMERICAL:
        return _Hermite(NUMERICAL[activation], tol, max_terms)
    raise InputError(
        "nngp_kernel", "activation", f"one of {list(ACTIVATIONS)} or a callable", repr(activation)
    )


# --------------------------------------------------------------------------------------
# The recursion
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelSpec:
    """The prior of a network: nonlinearity, weight and bias variances."""

    activation: str | Callable = "relu"
    weight_var: float = 1.0
    bias_var: float = 0.0
    tol: float = 1e-9
    max_terms: int = 1024


def check_features(X: Any, name: str = "X", source: object = "nngp_kernel") -> np.ndarray:
    """``X`` as a finite float64 (n_samples, n_features) array, or an InputError."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(source, name, "a numeric 2-d array", f"{type(exc).__name__}") from exc
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(
            source, name, "a 2-d array (n_samples, n_features), both >= 1", f"shape {arr.shape}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(source, name, "finite values", f"{int(bad.sum())} NaN/inf entries")
    return arr


def _check_spec(depths: Sequence[int], spec: KernelSpec) -> None:
    for d in depths:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise InputError("nngp_kernel", "depth", "an integer >= 0", repr(d))
    if not (np.isfinite(spec.weight_var) and spec.weight_var > 0):
        raise InputError("nngp_kernel", "weight_var", "a finite number > 0", repr(spec.weight_var))
    if not (np.isfinite(spec.bias_var) and spec.bias_var >= 0):
        raise InputError("nngp_kernel", "bias_var", "a finite number >= 0", repr(spec.bias_var))
    if not isinstance(spec.activation, str) and not callable(spec.activation):
        raise InputError(
            "nngp_kernel", "activation", "a name or a callable", repr(spec.activation)
        )


def kernel_diagonal(X: np.ndarray, depths: Sequence[int], spec: KernelSpec) -> list[np.ndarray]:
    """K^l(x, x) for every row of ``X`` at each depth in ``depths`` (O(n) work)."""
    _check_spec(depths, spec)
    X = check_features(X)
    act = _expectation(spec.activation, spec.tol, spec.max_terms)
    k = spec.bias_var + spec.weight_var * np.einsum("ij,ij->i", X, X) / X.shape[1]
    out = {0: k}
    for layer in range(1, max(depths) + 1):
        k = spec.bias_var + spec.weight_var * act.diag(k)
        out[layer] = k
    return [out[d] for d in depths]


def kernel_stack(
    X: np.ndarray,
    X2: np.ndarray | None,
    depths: Sequence[int],
    spec: KernelSpec,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> list[np.ndarray]:
    """K^l(X2, X) at every depth in ``depths``, computed block by block of rows.

    One pass of the recursion serves every requested depth. For ``X2 is None`` only the
    blocks on and above the diagonal are computed and the rest mirrored.
    """
    _check_spec(depths, spec)
    X = check_features(X, "X")
    symmetric = X2 is None
    X2 = X if symmetric else check_features(X2, "X2")
    if X2.shape[1] != X.shape[1]:
        raise InputError(
            "nngp_kernel", "X2", f"{X.shape[1]} features like X", f"{X2.shape[1]} features"
        )
    act = _expectation(spec.activation, spec.tol, spec.max_terms)
    w, b, d_in = spec.weight_var, spec.bias_var, X.shape[1]
    max_depth = max(depths)
    # Per-layer diagonals and per-point states, shared by every block.
    k_cols = b + w * np.einsum("ij,ij->i", X, X) / d_in
    k_rows = k_cols if symmetric else b + w * np.einsum("ij,ij->i", X2, X2) / d_in
    states, diagonals = [], [k_cols]
    for _ in range(max_depth):
        states.append(act.prepare(k_rows, k_cols))
        k_cols = b + w * act.diag(k_cols)
        k_rows = k_cols if symmetric else b + w * act.diag(k_rows)
        diagonals.append(k_cols)
    n_rows, n_cols = len(X2), len(X)
    outputs = {d: np.empty((n_rows, n_cols)) for d in depths}
    block = max(1, block_elements // max(n_cols, 1))
    for r0 in range(0, n_rows, block):
        r1 = min(r0 + block, n_rows)
        c0 = r0 if symmetric else 0  # upper triangle only when symmetric
        rows, cols = slice(r0, r1), slice(c0, n_cols)
        k = X2[rows] @ X[cols].T
        k *= w / d_in
        k += b
        for layer in range(max_depth + 1):
            if layer in outputs:
                outputs[layer][rows, cols] = k
            if layer == max_depth:
                break
            state_rows, state_cols = states[layer]
            k = act.cross(k, act.take(state_rows, rows), act.take(state_cols, cols))
            k *= w
            k += b
            if symmetric:
                # A numerical series is truncated within tol; on the diagonal the exact
                # E[phi(u)^2] is known, and keeps K(X, X) consistent with kernel_diagonal.
                i = np.arange(r1 - r0)
                k[i, i] = diagonals[layer + 1][r0:r1]
    if symmetric:
        for K in outputs.values():
            lower = np.tril_indices(n_rows, -1)
            K[lower] = K.T[lower]
    return [outputs[d] for d in depths]


def nngp_kernel(
    X: Any,
    X2: Any = None,
    *,
    depth: int,
    activation: str | Callable = "relu",
    weight_var: float = 1.0,
    bias_var: float = 0.0,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    tol: float = 1e-9,
    max_terms: int = 1024,
) -> np.ndarray:
    """The NNGP kernel K(X2, X) of a fully connected network of ``depth`` hidden layers.

    Parameters
    ----------
    X : array_like (n, d)
        Inputs (raw; the first layer divides ``x . x'`` by ``d``).
    X2 : array_like (m, d), optional
        Second inputs; default ``X`` (then the result is symmetric).
    depth : int
        Number of hidden layers (nonlinearities), ``>= 0``.
    activation : {"relu", "erf", "linear", "tanh", "sigmoid"} or callable
        ReLU, erf and linear in closed form; the others (and any vectorised numpy
        callable) by their Hermite expansion.
    weight_var, bias_var : float
        ``sigma_w^2 > 0`` and ``sigma_b^2 >= 0`` of every layer.
    block_elements : int
        Kernel entries computed at once; bounds memory at a few arrays of this size
        besides the output.
    tol, max_terms : float, int
        Numerical activations only: the Hermite series is truncated where its certified
        remainder is below ``tol`` per layer; more than ``max_terms`` terms is an error.

    Returns
    -------
    numpy.ndarray (m, n), float64
        ``K^depth(X2[i], X[j])``.

    Raises
    ------
    InputError
        Unknown activation, ``depth < 0``, non-positive ``weight_var``, negative
        ``bias_var``, non-finite or mis-shaped inputs.

    Notes
    -----
    The recursion of Lee et al. (2018), Eq. 4, in the conventions of neural-tangents'
    ``stax`` (``Dense(W_std, b_std)`` layers with ``W_std**2 = weight_var``):

    .. math::

        K^0 = \\sigma_b^2 + \\sigma_w^2 x \\cdot x'/d, \\quad
        K^l = \\sigma_b^2 + \\sigma_w^2 E_{N(0, K^{l-1})}[\\phi(u)\\phi(v)].

    For ReLU, with ``cos t = K12 / sqrt(K11 K22)``,
    ``E = sqrt(K11 K22) (sin t + (pi - t) cos t) / (2 pi)``: half the degree-1
    arc-cosine kernel of Cho & Saul (2009). For erf,
    ``E = (2 / pi) arcsin(2 K12 / sqrt((1 + 2 K11)(1 + 2 K22)))`` (Williams 1997).

    References
    ----------
    .. [1] Lee J, Bahri Y, Novak R, Schoenholz SS, Pennington J, Sohl-Dickstein J (2018).
       Deep neural networks as Gaussian processes. ICLR.
    .. [2] Cho Y, Saul LK (2009). Kernel methods for deep learning. NeurIPS.
    .. [3] Novak R et al. (2020). Neural Tangents: fast and easy infinite neural networks
       in Python. ICLR.
    """
    spec = KernelSpec(activation, float(weight_var), float(bias_var), tol, max_terms)
    return kernel_stack(X, X2, [depth], spec, block_elements)[0]


def activation_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy function of a named activation (for tests and finite networks)."""
    table = {"relu": lambda u: np.maximum(u, 0.0), "erf": erf, "linear": lambda u: u, **NUMERICAL}
    if name not in table:
        raise InputError("nngp", "activation", f"one of {list(table)}", repr(name))
    return table[name]
