"""SNGAN, standard CNN, on CIFAR-10 (Miyato et al. 2018), reported as FID-50k.

On a machine with the data and the Inception weights (a GPU: 100k steps of a 9.7M-
parameter pair, plus 50,000 Inception forward passes at the end):

    python -m ganjax.prepare cifar10        # once; needs .[prepare] and the network
    ./run.sh --config=configs/sngan_cifar10.py --workdir=runs/sngan_cifar10 \
        --config.inception_weights=/path/to/pt_inception-2015-12-05-6726825d.pth

(without --config.inception_weights the file is read from $GANJAX_CACHE or
~/.cache/ganjax, downloaded there once). eval.json then holds ``fid50k``: the FID
of 50,000 samples against the statistics of the 50,000 CIFAR-10 training images
(cached under <data_dir>/ganjax_features/), and the in-training ``fid`` of
10,000 samples against the same statistics.

Settings and their sources (chainer-gan-lib = pfnet-research/chainer-gan-lib, the SNGAN
authors' library, whose example.sh trains SNGAN's standard CNN as
``train.py --algorithm stdgan --architecture sndcgan --n_dis 1 --adam_beta1 0.5
--adam_beta2 0.999``):
  model sngan_cnn (ganjax/sngan.py): chainer-gan-lib common/net.py DCGANGenerator and
    SNDCGANDiscriminator
  loss classic (non-saturating, softplus form): chainer-gan-lib stdgan/updater.py
  n_dis 1: chainer-gan-lib example.sh (--n_dis 1)
  Adam beta1 0.5: chainer-gan-lib example.sh (--adam_beta1 0.5)
  Adam beta2 0.999: chainer-gan-lib example.sh (--adam_beta2 0.999)
  learning rate 2e-4, G and D: chainer-gan-lib train.py (--adam_alpha default 0.0002)
  batch 64: chainer-gan-lib train.py (--batchsize default 64)
  100,000 generator updates: chainer-gan-lib train.py (--max_iter default 100000)
  z_dim 128: chainer-gan-lib DCGANGenerator (n_hidden=128)
  spectral norm on every D layer, none in G; batch norm in G: chainer-gan-lib common/net.py
  no EMA, no penalty: neither appears in chainer-gan-lib's stdgan run
This is the paper's setting C (α = 0.0002, β1 = 0.5, β2 = 0.999, n_dis = 1), not D-F
(α = 0.001 or n_dis = 5); the paper's Table 1 was not retrievable here, so that
identification is from memory. The loss is the standard non-saturating one, as
chainer-gan-lib's stdgan updater computes it; ``--loss=hinge`` gives the hinge loss
that later SNGAN reimplementations use (e.g. w86763777/pytorch-gan-collections'
config/SNGAN_CIFAR10_CNN.txt: hinge, lr 2e-4 both, n_dis 1, batch 64, 100k steps,
z_dim 128).

Published number: FID 29.3 and Inception Score 7.42 for SN-GANs with the standard
CNN on CIFAR-10 (Miyato et al. 2018, Table 2; from memory: the search corpora hold
the paper's abstract but not its tables; Papers with Code lists only its ResNet
numbers, FID 21.7 and IS 8.22). That FID is not FID-50k: the authors' code
(pfnet-research/sngan_projection, evaluation.py ``calc_FID``) generates
``n_ims=5000`` samples and compares them with precomputed statistics
``cifar-10-fid.npz`` (the code does not say of which split; the paper's appendix, from
memory, says 10,000 real images). FID is biased upwards at small sample counts
(Bińkowski et al. 2018), so FID-50k against the 50,000 training images should land
near, typically somewhat below, 29.3. ``sngan_cnn`` follows chainer-gan-lib's
networks; the remaining differences (normal instead of uniform z, LeakyReLU slope
0.1 instead of Chainer's default 0.2, batch-norm epsilon) are listed in
ganjax/sngan.py. ganjax's ``dcgan`` model is not this network: its D has three 4x4
stride-2 convolutions (64-128-256) and no 3x3 stride-1 layers between them (SNGAN: seven
convolutions up to 512 channels), LeakyReLU 0.2, spectral norm only when asked; its G
starts at 4x4x256 and its last transposed convolution writes the image (SNGAN: 4x4x512,
then 256-128-64 and a 3x3 output convolution), without batch norm unless asked. With
0.66M discriminator parameters against SNGAN's 5.9M it would likely land at a clearly
higher FID, so the SNGAN number is compared with ``sngan_cnn`` only.
"""

from configs import default
from ganjax import sngan  # pylint: disable=unused-import  (registers model 'sngan_cnn')

del sngan


def get_config():
  c = default.get_config()
  c.name, c.dataset, c.model = 'sngan_cifar10', 'cifar10', 'sngan_cnn'
  c.loss = 'classic'
  c.n_dis = 1
  c.batch_size = 64
  c.steps = 100_000
  for opt in (c.g_optimizer, c.d_optimizer):
    opt.learning_rate, opt.b1, opt.b2 = 2e-4, 0.5, 0.999
  c.model_options.z_dim = 128
  c.model_options.width = 64
  c.ema_decay = 0.0
  c.features = 'inception'
  c.final_eval_samples = 50_000
  c.eval_samples = 10_000
  c.log_every, c.eval_every, c.checkpoint_every = 500, 10_000, 5_000
  return c
