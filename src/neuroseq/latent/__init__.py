"""Latent-variable analyses of population activity."""

from neuroseq.latent.uae import LassoRecovery, PCARecovery, UncertaintyAutoencoder

__all__ = ["LassoRecovery", "PCARecovery", "UncertaintyAutoencoder"]
