"""8 Gaussians on the unit circle, std 0.01 (PacGAN's ring), MLP GAN. The default.

    ./run.sh
    ./run.sh --config=configs/ring.py --loss=hinge --workdir=runs/ring_hinge
"""

from configs import default


def get_config():
  return default.mixture_mlp('ring', 'ring')
