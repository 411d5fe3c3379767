"""CelebA from TFDS, center-cropped and resized to 64x64x3, DCGAN. Prepare it once:

    pip install -e ".[prepare]" && python -m ganjax.prepare celeba64
    ./run.sh --config=configs/celeba64.py --workdir=runs/celeba64

The DCGAN image recipe of `configs/default.py: dcgan_images`, as CIFAR-10's.
CelebA has no class labels, so the feature-space metrics are off (samples only).
"""

from configs import default


def get_config():
  return default.dcgan_images('celeba64', 'celeba64', steps=50000)
