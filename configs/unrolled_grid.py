"""The Unrolled GAN notebook's 2D recipe (recipe B), also GDPP's, on the grid.

    ./run.sh --config=configs/unrolled_grid.py --workdir=runs/unrolled_grid
    ./run.sh --config=configs/unrolled_grid.py --config.unroll_steps=5 --workdir=runs/u5_grid

The settings and their sources are those of configs/unrolled_ring.py; the data is
25 modes at {-4,-2,0,2,4}², std 0.05 (VEEGAN/PacGAN's grid).
"""

from configs import unrolled_ring


def get_config():
  return unrolled_ring.unrolled('unrolled_grid', 'grid')
