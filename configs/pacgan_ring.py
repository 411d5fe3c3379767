"""PacGAN's 2D recipe (Lin et al. 2018, recipe A) on the ring: PacGAN Table 1's setting.

    ./run.sh --config=configs/pacgan_ring.py --workdir=runs/pacgan_ring           # GAN row
    ./run.sh --config=configs/pacgan_ring.py --config.pack=4 --config.batch_size=400 \
             --config.train_size=400000 --config.g_bn_groups=4 \
             --workdir=runs/pacgan4_ring                                        # PacGAN4

Every setting and its source (fjxmlzn/PacGAN, synthetic_data_experiments/
2DGrid_GAN&PacGAN/{config.py,pacgan_task.py}; 2DRing_GAN&PacGAN/config.py differs only
in the means; reference/published-2d-tables.md):
- data: 8 modes, radius 1, std 0.01 (2DRing config.py); 100,000 training examples
  ("num_sample"); an example is a pack of m points (pacgan/streams.py:
  GaussianPackingMixture(num_packings=m, num_examples=100000)), so ganjax draws
  100,000·m points and forms packs from them: `train_size = 100000·m`. PacGAN keeps each
  pack's points together across epochs, ganjax re-forms packs every epoch (same
  distribution of packs).
- batch 100 packs ("batch_size"): `batch_size = 100·m` points, `pack = m`. The fakes come
  from m generator calls of 100 (pacgan/bricks.py compute_losses: one per `zs`), pack i
  holding the i-th sample of each, so G's BatchNorm normalises each call apart:
  `g_bn_groups = m` (group j: pack position j).
- 400 epochs ("num_epoch") of 1,000 batches: 400,000 steps.
- z ~ N(0, I₂) ("num_zdim" 2, "z_mode_std" 1, one mode at the origin).
- G: 2 -> 400 -> 400 -> 400 -> 400 -> 2 ("gen_hidden_size"), BatchNorm + ReLU on each hidden
  layer (pacgan_task.py: decoder); its hidden layers have no bias (use_bias=False): a bias
  before BatchNorm cancels, so ganjax's Dense bias has no effect (it gets zero gradient).
  Its running averages keep 0.95 of the old value per update (pacgan_task.py: bn_updates,
  `m * 0.05 + p * 0.95`): `bn_momentum = 0.95`.
- BatchNorm statistics for sampling: before GraphLogger samples at the end of an epoch, the
  train-stream DataStreamMonitoring runs 50 batches (ShuffledScheme(5000, batch_size) in
  pacgan/streams.py) with `updates=bn_updates` at fixed weights, so the samples use running
  averages fitted to the final weights: `eval_bn_refresh = 50`. With packs of m, each pass
  is m generator calls of 100 whose updates are averaged, in both (`g_bn_groups`). Without
  the refresh, HQ at step 400,000 fell from about 98% to 92.6% on two seeds of the GAN row
  (experiments/reproduce_2d_causes.md).
- D: three LinearMaxout layers, 200 units ("disc_hidden_size"), 5 pieces
  ("disc_maxout_pieces"), then a linear output; input 2·m.
- init: IsotropicGaussian(0.02) weights ("weights_init_std"), zero biases.
- loss: the classic GAN, softplus form, non-saturating generator (pacgan/bricks.py).
- Adam lr 1e-4 ("learning_rate"), β1 0.8 ("beta1"), β2 0.999 (blocks' default), both nets.
- D and G updated together from one batch (ali_algorithm): update_order simultaneous.
- evaluation: 2,500 samples ("num_log_figure_sample"); hq = within 3 std.
"""

from configs import default


def pacgan(name: str, dataset: str):
  """Recipe A for `dataset` ('ring' or 'grid'), pack 1 (the GAN row)."""
  c = default.get_config()
  c.name, c.dataset, c.model = name, dataset, 'mlp'
  c.train_size = 100_000
  c.batch_size = 100
  c.steps = 400_000
  c.model_options.update(dict(
      z_dim=2, hidden=(400, 400, 400, 400), batch_norm=True, g_activation='relu',
      d_hidden=(200, 200, 200), maxout=5, init='normal', init_scale=0.02, bn_momentum=0.95))
  c.eval_bn_refresh = 50
  c.loss = 'classic'
  c.update_order = 'simultaneous'
  for opt in (c.g_optimizer, c.d_optimizer):
    opt.learning_rate, opt.b1, opt.b2 = 1e-4, 0.8, 0.999
  c.log_every, c.eval_every, c.checkpoint_every = 10_000, 100_000, 50_000
  return c


def get_config():
  return pacgan('pacgan_ring', 'ring')
