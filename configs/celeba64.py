"""CelebA from TFDS, center-cropped and resized to 64x64x3, DCGAN. Prepare it once:

    pip install -e ".[prepare]" && python -m ganjax.prepare celeba64
    ./run.sh --config=configs/celeba64.py --workdir=runs/celeba64

CelebA has no class labels, so the feature-space metrics are off (samples only).
"""

from configs import cifar10


def get_config():
  c = cifar10.get_config()  # the same DCGAN recipe and length
  c.name = 'celeba64'
  c.dataset = 'celeba64'
  return c
