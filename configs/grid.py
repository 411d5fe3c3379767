"""25 Gaussians at {-4,-2,0,2,4}^2, std 0.05 (VEEGAN/PacGAN's grid), MLP GAN.

    ./run.sh --config=configs/grid.py --workdir=runs/grid
"""

from configs import default


def get_config():
  c = default.mixture_mlp('grid', 'grid')
  c.model_options.hidden = (256, 256, 256)
  return c
