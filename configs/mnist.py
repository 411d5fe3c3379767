"""MNIST (28x28x1) from TFDS, DCGAN. Needs the dataset prepared once as array_record:

    pip install -e ".[prepare]" && python -m ganjax.prepare mnist
    ./run.sh --config=configs/mnist.py --workdir=runs/mnist
"""

from configs import default


def get_config():
  c = default.get_config()
  c.name = 'mnist'
  c.dataset = 'mnist'
  c.model = 'dcgan'
  c.model_options.width = 64
  c.batch_size = 64
  c.steps = 20000
  c.g_optimizer.learning_rate = 2e-4
  c.d_optimizer.learning_rate = 2e-4
  c.ema_decay = 0.999
  c.eval_samples = 10000
  c.log_every = 500
  c.eval_every = 5000
  c.checkpoint_every = 2000
  return c
