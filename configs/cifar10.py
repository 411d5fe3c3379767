"""CIFAR-10 (32x32x3) from TFDS, DCGAN. Needs the dataset prepared once as array_record:

    pip install -e ".[prepare]" && python -m ganjax.prepare cifar10
    ./run.sh --config=configs/cifar10.py --workdir=runs/cifar10
"""

from configs import mnist


def get_config():
  c = mnist.get_config()  # the same DCGAN recipe
  c.name = 'cifar10'
  c.dataset = 'cifar10'
  c.steps = 50000
  return c
