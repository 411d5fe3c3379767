"""CelebA, center-cropped and resized to 64x64x3 from TFDS, DCGAN. Needs the dataset prepared once as array_record:

    pip install -e ".[prepare]" && python -m ganjax.prepare celeba64
    ./run.sh --config=configs/celeba64.py --workdir=runs/celeba64
"""

from configs import default


def get_config():
  c = default.get_config()
  c.name = 'celeba64'
  c.dataset = 'celeba64'
  c.model = 'dcgan'
  c.model_options.width = 64
  c.batch_size = 64
  c.steps = 50000
  c.g_optimizer.learning_rate = 2e-4
  c.d_optimizer.learning_rate = 2e-4
  c.ema_decay = 0.999
  c.eval_samples = 10000
  c.log_every = 500
  c.eval_every = 5000
  c.checkpoint_every = 2000
  return c
