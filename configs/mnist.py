"""MNIST (28x28x1) from TFDS, DCGAN. Needs the dataset prepared once as array_record:

    pip install -e ".[prepare]" && python -m ganjax.prepare mnist
    ./run.sh --config=configs/mnist.py --workdir=runs/mnist

The DCGAN image recipe of `configs/default.py: dcgan_images`, 20k steps.
"""

from configs import default


def get_config():
  return default.dcgan_images('mnist', 'mnist', steps=20000)
