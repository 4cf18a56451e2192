"""Policy-space compression (arXiv 2509.22566): a behavioural autoencoder over the
parameters of many small policies, searched by PGPE in its latent space.

Data path: ``dataset`` (novelty search over Θ, rolled out on the ``*_skills`` families)
-> ``autoencoder`` (f: Θ -> Z, g: Z -> Θ, behavioural reconstruction loss) -> ``store``
(``DIR/dataset.npz``, ``DIR/autoencoder_z<d>/``) -> ``search`` (evosax PGPE in Z through
g, or in Θ).  ``load(workdir, latent_dim)`` gives ``decode(z)`` and ``policy(z)``.
"""
from earjax.compression.store import CompressedSpace, load

__all__ = ["CompressedSpace", "load"]
