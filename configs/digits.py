"""scikit-learn's 8x8 digits (offline), small DCGAN.

    ./run.sh --config=configs/digits.py --workdir=runs/digits
"""

from configs import default


def get_config():
  c = default.get_config()
  c.name = 'digits'
  c.dataset = 'digits'
  c.model = 'dcgan'
  c.model_options.width = 32
  c.model_options.z_dim = 32
  c.batch_size = 64
  c.steps = 3000
  c.g_optimizer.learning_rate = 2e-4
  c.d_optimizer.learning_rate = 2e-4
  c.ema_decay = 0.999
  c.eval_samples = 1000
  c.log_every = 250
  return c
