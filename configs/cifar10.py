"""CIFAR-10 (32x32x3) from TFDS, DCGAN. Needs the dataset prepared once as array_record:

    pip install -e ".[prepare]" && python -m ganjax.prepare cifar10
    ./run.sh --config=configs/cifar10.py --workdir=runs/cifar10

The DCGAN image recipe of `configs/default.py: dcgan_images`, as MNIST and CelebA use it.
"""

from configs import default


def get_config():
  return default.dcgan_images('cifar10', 'cifar10', steps=50000)
