"""ganjax: GAN objectives in JAX/Flax.

`ganjax.losses` and `ganjax.penalties` import only jax and numpy; the training
modules (models, data, train, checkpoint) are imported explicitly.
"""

# The one place of the version: setup.cfg reads it (`version = attr: ganjax.__version__`)
# without importing anything, so keep this module free of imports.
__version__ = '0.1.0'
