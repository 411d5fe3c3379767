"""PacGAN's 2D recipe (Lin et al. 2018, recipe A) on the grid: PacGAN Table 1's setting.

    ./run.sh --config=configs/pacgan_grid.py --workdir=runs/pacgan_grid           # GAN row
    ./run.sh --config=configs/pacgan_grid.py --config.pack=4 --config.batch_size=400 \
             --config.train_size=400000 --config.g_bn_groups=4 \
             --workdir=runs/pacgan4_grid                                        # PacGAN4

The settings and their sources are those of configs/pacgan_ring.py; the data is
25 modes at {-4,-2,0,2,4}², std 0.05 (fjxmlzn/PacGAN, synthetic_data_experiments/
2DGrid_GAN&PacGAN/config.py: MEANS, VARIANCES).
"""

from configs import pacgan_ring


def get_config():
  return pacgan_ring.pacgan('pacgan_grid', 'grid')
