"""scikit-learn's 8x8 digits (offline), small DCGAN.

    ./run.sh --config=configs/digits.py --workdir=runs/digits

The DCGAN image recipe of `configs/default.py: dcgan_images` at a quarter of the width,
3,000 steps.
"""

from configs import default


def get_config():
  c = default.dcgan_images('digits', 'digits', steps=3000)
  c.model_options.width = 32
  c.model_options.z_dim = 32
  c.eval_samples = 1000
  c.log_every, c.eval_every, c.checkpoint_every = 250, 1000, 1000
  return c
