"""Neural network Gaussian processes (Lee et al. 2018) against finite-width networks."""

from neuroseq.nngp.analysis import run_nngp, summarize_nngp
from neuroseq.nngp.finite import FiniteMLPClassifier, FiniteMLPRegressor
from neuroseq.nngp.gp import NNGPClassifier, NNGPRegressor
from neuroseq.nngp.kernels import nngp_kernel

__all__ = [
    "FiniteMLPClassifier",
    "FiniteMLPRegressor",
    "NNGPClassifier",
    "NNGPRegressor",
    "nngp_kernel",
    "run_nngp",
    "summarize_nngp",
]
