"""Latent-variable analyses of population activity: oi-VAE and uncertainty autoencoders.

Estimators are imported on first use, so that the workflow can read what a session offers
(:func:`neuroseq.latent.oivae_data.oivae_groups`) without loading torch.
"""

import importlib

_ESTIMATORS = {
    "OIVAE": "neuroseq.latent.oivae",
    "LassoRecovery": "neuroseq.latent.uae",
    "PCARecovery": "neuroseq.latent.uae",
    "UncertaintyAutoencoder": "neuroseq.latent.uae",
}
__all__ = list(_ESTIMATORS)


def __getattr__(name: str):
    if name in _ESTIMATORS:
        return getattr(importlib.import_module(_ESTIMATORS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
