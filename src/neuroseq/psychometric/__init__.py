"""Psychometric lapse models (Wichmann & Hill 2001; Pisupati et al. 2021), fitted jointly."""

from neuroseq.psychometric.estimator import LapseModel
from neuroseq.psychometric.models import MODELS, PARAMS

__all__ = ["MODELS", "PARAMS", "LapseModel"]
