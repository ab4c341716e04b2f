"""Latent-variable models of grouped population activity and behaviour (oi-VAE).

``OIVAE`` is imported on first use, so that the workflow can read what a session offers
(:func:`neuroseq.latent.oivae_data.oivae_groups`) without loading torch.
"""

__all__ = ["OIVAE"]


def __getattr__(name: str):
    if name == "OIVAE":
        from neuroseq.latent.oivae import OIVAE

        return OIVAE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
