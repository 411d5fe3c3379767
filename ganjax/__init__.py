"""ganjax: GAN objectives in JAX/Flax.

`ganjax.losses` and `ganjax.penalties` import only jax and numpy; the training
modules (models, data, train, checkpoint) are imported explicitly.
"""

__version__ = '0.1.0'
