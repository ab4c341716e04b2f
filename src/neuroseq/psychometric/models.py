"""The four lapse models: p(rightward choice | stimulus, rewards) and its gradient.

Every model is a :class:`Model`: the names of its free parameters, its derived parameters,
and ``p_right(theta, s, r_left, r_right)`` returning p and dp/dtheta for each parameter,
vectorised over trials (or over cells of aggregated trials). Choice 1 = rightward; the
stimulus is signed, + = rightward evidence. ``F`` is the standard normal CDF (``phi`` its
density) or, with ``link="logistic"``, the logistic function.

Notes
-----
``psychometric`` (Wichmann & Hill 2001)::

    p = gamma + (1 - gamma - lambda) F((s - mu) / sigma)

``inattention`` (Pisupati et al. 2021): on a fraction ``1 - p_attend`` of trials the animal
ignores the stimulus and chooses right with probability ``p_bias``::

    p = p_attend F((s - mu) / sigma) + (1 - p_attend) p_bias
    gamma = p_bias (1 - p_attend),  lambda = (1 - p_bias)(1 - p_attend)

``exploration`` (Pisupati et al. 2021): a softmax over action values. The observation is
``x ~ N(s, sigma^2)``; with a flat prior and the category boundary at 0,
``p(right correct | x) = Phi(x / sigma)``, so ``Q_R = Phi(x / sigma) r_R`` and
``Q_L = (1 - Phi(x / sigma)) r_L``, and::

    p = E_x[ 1 / (1 + exp(-beta (Q_R - Q_L))) ]

with ``x`` integrated out by Gauss-Hermite quadrature (fixed nodes). ``r_L, r_R`` are the
trial's rewards from the trial table (reward blocks), not free parameters. Its asymptotes
give ``gamma = 1 / (1 + exp(beta r_L))``, ``lambda = 1 / (1 + exp(beta r_R))``: lapses fall
on the side whose reward grows, the model's signature.

``fixed_error``: a symmetric motor error: the intended choice is flipped with probability
``epsilon``::

    p = epsilon + (1 - 2 epsilon) F((s - mu) / sigma),  gamma = lambda = epsilon
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit, ndtr

#: Every parameter name any model reports, in the order of the output's ``param`` dim.
PARAMS = (
    "mu",
    "sigma",
    "gamma",
    "lambda",
    "p_attend",
    "p_bias",
    "beta",
    "epsilon",
    "r_L",
    "r_R",
    "gamma_plus_lambda",
    "lapse_asymmetry",
)

_SQRT2PI = np.sqrt(2.0 * np.pi)
_NODES, _WEIGHTS = hermegauss(41)  # probabilists' Hermite: E[g(Z)], Z ~ N(0, 1)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()

Grad = dict[str, np.ndarray]


def _link(link: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    if link == "normal":
        return lambda z: (ndtr(z), np.exp(-0.5 * z * z) / _SQRT2PI)
    if link == "logistic":

        def logistic(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            f = expit(z)
            return f, f * (1.0 - f)

        return logistic
    raise ValueError(f"link must be 'normal' or 'logistic', got {link!r}")


@dataclass(frozen=True)
class Model:
    """One lapse model: its free parameters and how p(right) depends on them."""

    name: str
    free: tuple[str, ...]
    p_right: Callable[..., tuple[np.ndarray, Grad]]
    derived: Callable[[dict[str, float], float, float], dict[str, float]]
    #: Numbers computed per cell in one evaluation (quadrature nodes for exploration):
    #: how much array work an evaluation is beside its fixed call overhead.
    width: int = 1
    #: Models with F((s - mu) / sigma): the maximum-likelihood lapse parameters of the
    #: step limit (sigma -> 0) from the trials below (n_below, k_below rightward) and
    #: above the step, ``step(k_below, n_below, k_above, n_above) -> {param: array}``.
    step: Callable[..., dict[str, np.ndarray]] | None = None


def _curve(theta, s, link):
    z = (s - theta["mu"]) / theta["sigma"]
    f, dens = _link(link)(z)
    return f, dens, z


def _psychometric(theta, s, r_left, r_right, link="normal"):
    f, dens, z = _curve(theta, s, link)
    g, lam = theta["gamma"], theta["lambda"]
    span = 1.0 - g - lam
    p = g + span * f
    d_mu = -span * dens / theta["sigma"]
    return p, {"mu": d_mu, "sigma": d_mu * z, "gamma": 1.0 - f, "lambda": -f}


def _inattention(theta, s, r_left, r_right, link="normal"):
    f, dens, z = _curve(theta, s, link)
    a, b = theta["p_attend"], theta["p_bias"]
    p = a * f + (1.0 - a) * b
    d_mu = -a * dens / theta["sigma"]
    return p, {
        "mu": d_mu,
        "sigma": d_mu * z,
        "p_attend": f - b,
        "p_bias": np.full_like(f, 1.0 - a),
    }


def _fixed_error(theta, s, r_left, r_right, link="normal"):
    f, dens, z = _curve(theta, s, link)
    e = theta["epsilon"]
    p = e + (1.0 - 2.0 * e) * f
    d_mu = -(1.0 - 2.0 * e) * dens / theta["sigma"]
    return p, {"mu": d_mu, "sigma": d_mu * z, "epsilon": 1.0 - 2.0 * f}


def _exploration(theta, s, r_left, r_right, link="normal"):
    # Trials (or cells) along the first axis, quadrature nodes along the last.
    beta, sigma, s, r_left, r_right = (
        np.asarray(a, dtype=float)[..., None]
        for a in (theta["beta"], theta["sigma"], s, r_left, r_right)
    )
    u = s / sigma + _NODES  # x / sigma at each quadrature node
    pc = ndtr(u)  # p(right correct | x)
    dq = pc * (r_left + r_right) - r_left  # Q_R - Q_L
    soft = expit(beta * dq)
    slope = soft * (1.0 - soft)
    p = soft @ _WEIGHTS
    d_beta = (slope * dq) @ _WEIGHTS
    d_u = -s / sigma**2  # du / dsigma
    density = np.exp(-0.5 * u * u) / _SQRT2PI
    d_sigma = (slope * beta * (r_left + r_right) * density * d_u) @ _WEIGHTS
    return p, {"beta": d_beta, "sigma": d_sigma}


# Step limits. Below the step p is the left asymptote, above it the right one, and the
# two are fitted to the binomial counts on each side: each bounded rate's MLE is the
# observed fraction clipped to its bounds (the log-likelihood is concave in it).


def _psychometric_step(kb, nb, ka, na):
    return {"gamma": np.clip(kb / nb, 0.0, 0.5), "lambda": np.clip((na - ka) / na, 0.0, 0.5)}


def _inattention_step(kb, nb, ka, na):
    # gamma = (1 - a) b below, lambda = (1 - a)(1 - b) above; where the rates cross
    # (more right choices below than above) the constrained MLE is a flat curve, a = 0.
    gl, lr = kb / nb, (na - ka) / na
    lapse = gl + lr
    ok = lapse <= 1.0
    p_attend = np.where(ok, 1.0 - lapse, 0.0)
    pooled = (kb + ka) / (nb + na)
    p_bias = np.where(ok, np.divide(gl, lapse, out=np.full_like(gl, 0.5), where=lapse > 0), pooled)
    return {"p_attend": p_attend, "p_bias": p_bias}


def _fixed_error_step(kb, nb, ka, na):
    return {"epsilon": np.clip((kb + na - ka) / (nb + na), 0.0, 0.5)}


def _lapse_summary(gamma: float, lam: float) -> dict[str, float]:
    return {
        "gamma": gamma,
        "lambda": lam,
        "gamma_plus_lambda": gamma + lam,
        "lapse_asymmetry": gamma - lam,
    }


MODELS: dict[str, Model] = {
    "psychometric": Model(
        "psychometric",
        ("mu", "sigma", "gamma", "lambda"),
        _psychometric,
        lambda t, rl, rr: _lapse_summary(t["gamma"], t["lambda"]),
        step=_psychometric_step,
    ),
    "inattention": Model(
        "inattention",
        ("mu", "sigma", "p_attend", "p_bias"),
        _inattention,
        lambda t, rl, rr: _lapse_summary(
            t["p_bias"] * (1 - t["p_attend"]), (1 - t["p_bias"]) * (1 - t["p_attend"])
        ),
        step=_inattention_step,
    ),
    "exploration": Model(
        "exploration",
        ("sigma", "beta"),
        _exploration,
        lambda t, rl, rr: {
            "r_L": rl,
            "r_R": rr,
            **_lapse_summary(float(expit(-t["beta"] * rl)), float(expit(-t["beta"] * rr))),
        },
        width=len(_NODES),
    ),
    "fixed_error": Model(
        "fixed_error",
        ("mu", "sigma", "epsilon"),
        _fixed_error,
        lambda t, rl, rr: _lapse_summary(t["epsilon"], t["epsilon"]),
        step=_fixed_error_step,
    ),
}


def bounds(name: str, stimulus: np.ndarray, rewards: np.ndarray) -> tuple[float, float, bool]:
    """Bounds of parameter ``name`` scaled to the data, and whether to search it in log space.

    The location and scale bounds follow the stimulus range (a fixed slope cap would end
    fits on the bound for data on another scale); ``beta`` follows the reward scale.
    """
    lo, hi = float(np.min(stimulus)), float(np.max(stimulus))
    span = hi - lo
    r_max = float(np.max(np.abs(rewards))) if rewards.size and np.max(np.abs(rewards)) > 0 else 1.0
    table = {
        "mu": (lo - span, hi + span, False),
        "sigma": (span * 1e-3, span * 10.0, True),
        "gamma": (0.0, 0.5, False),
        "lambda": (0.0, 0.5, False),
        "p_attend": (0.0, 1.0, False),
        "p_bias": (0.0, 1.0, False),
        "epsilon": (0.0, 0.5, False),
        "beta": (1e-3 / r_max, 100.0 / r_max, True),
    }
    return table[name]
