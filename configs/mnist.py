"""MNIST (28x28x1) from TFDS, DCGAN. Needs the dataset prepared once as array_record:

    pip install -e ".[prepare]" && python -m ganjax.prepare mnist
    ./run.sh --config=configs/mnist.py --workdir=runs/mnist
"""

from configs import digits


def get_config():
  c = digits.get_config()  # the digits DCGAN recipe, full width and longer
  c.name = 'mnist'
  c.dataset = 'mnist'
  c.model_options.width = 64
  c.model_options.z_dim = None  # the model's default, 100
  c.steps = 20000
  c.eval_samples = 10000
  c.log_every = 500
  c.eval_every = 5000
  c.checkpoint_every = 2000
  return c
