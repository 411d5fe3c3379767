"""The Unrolled GAN notebook's 2D recipe (recipe B), also GDPP's, on ganjax's ring.

    ./run.sh --config=configs/unrolled_ring.py --workdir=runs/unrolled_ring       # GAN
    ./run.sh --config=configs/unrolled_ring.py --config.unroll_steps=5 \
             --workdir=runs/unrolled5_ring                                      # Unrolled GAN

Every setting and its source (poolio/unrolled_gan, the notebook; M-Elfeki/GDPP,
gdppgan_Synthetic.py; reference/published-2d-tables.md, recipe B):
- z: 256-d standard normal ("z_dim").
- G and D: two hidden layers of 128 units, tanh; orthogonal init with gain 1.4.
- batch 512; 25,000 iterations ("max_iter").
- Adam: G lr 1e-3, D lr 1e-4, β1 0.5, ε 1e-8 (optax's default).
- loss: the notebook's D minimises the classic cross-entropy; its G minimises the
  saturating (minimax) game value against the unrolled D: `generator='minimax'`.
- unrolling: 5 look-ahead D steps for the Unrolled GAN row (`unroll_steps=5`); 0 for GAN.
- update order: one `sess.run([[loss, unrolled_loss], g_train_op, d_train_op])` per
  iteration (the notebook; GDPP: `sess.run([g_train_op, d_train_op])`) updates D and G
  together from one batch, G against D before its update (and unrolling from it):
  `update_order='simultaneous'`. A loss whose n_dis > 1 (WGAN-GP) needs 'alternating'.
- data: the notebook's ring, `np.linspace(0, 2π, 8)`, repeats its first angle at its
  last: 7 distinct modes, one twice as likely. ganjax keeps its 8 distinct modes (PacGAN's
  ring, radius 1, std 0.01); `--config.dataset=gdpp_ring` is GDPP's ring and mode count
  (ganjax/data.py, `_gdpp_ring`, says how GDPP's count reaches 8 on 7 modes).
The notebook says its settings are "not identical to the one in the paper".
"""

from configs import default


def unrolled(name: str, dataset: str):
  """Recipe B for `dataset` ('ring' or 'grid'), no unrolling (the GAN row)."""
  c = default.get_config()
  c.name, c.dataset, c.model = name, dataset, 'mlp'
  c.batch_size = 512
  c.steps = 25_000
  c.model_options.update(dict(
      z_dim=256, hidden=(128, 128), g_activation='tanh', d_activation='tanh',
      init='orthogonal', init_scale=1.4))
  c.loss = 'classic'
  c.loss_options.generator = 'minimax'
  c.g_optimizer.learning_rate, c.d_optimizer.learning_rate = 1e-3, 1e-4
  for opt in (c.g_optimizer, c.d_optimizer):
    opt.b1, opt.b2 = 0.5, 0.999
  c.update_order = 'simultaneous'
  c.penalty_weight = 0.1  # WGAN-GP's toy λ (Gulrajani et al., gan_toy.py), if --loss=wgan
  c.log_every, c.eval_every, c.checkpoint_every = 1000, 5000, 5000
  return c


def get_config():
  return unrolled('unrolled_ring', 'ring')
