"""Every configuration field, with its default. Other configs import and override it.

    ./run.sh --config=configs/default.py --workdir=runs/default

Fields left as `placeholder`s (None) take the registered loss's defaults
(`ganjax.losses.register(..., penalty=, penalty_weight=, n_dis=, betas=)`; for
example WGAN: penalty wgan_gp, weight 10, n_dis 5), so `--loss=wgan` alone gives
a sensible WGAN-GP. The recipes below (`mixture_mlp`, `dcgan_images`) build on
`get_config` and are what the other config files call: every config is at most
two deep, default -> one recipe.
"""

from typing import Any

from ml_collections import config_dict

from ganjax import losses, models


def _placeholders(defaults: list[dict[str, Any]]) -> config_dict.ConfigDict:
  """A None placeholder per option name, typed by its defaults (`object` where they differ)."""
  types: dict[str, type] = {}
  for options in defaults:
    for name, default in options.items():
      kind = object if default is None else type(default)
      types[name] = kind if types.get(name, kind) is kind else object
  return config_dict.ConfigDict({k: config_dict.placeholder(t) for k, t in sorted(types.items())})


def _optimizer() -> config_dict.ConfigDict:
  # `object` fields accept a number or, with a population, one number per member (b1/b2:
  # where the optimiser takes them as numbers: Adam's betas, RMSProp's b2).
  # b1/b2 left as None take the loss's default (its registered `betas`).
  return config_dict.ConfigDict(dict(
      name='adam', learning_rate=config_dict.FieldReference(1e-4, field_type=object),
      b1=config_dict.placeholder(object), b2=config_dict.placeholder(object)))


def get_config() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.name = 'default'                 # used for the default workdir runs/<name>
  # --- objective
  c.loss = 'classic'                 # a registered loss: ganjax.losses.names()
  # One None placeholder per keyword option of every registered loss (None = the loss's own
  # default; its docstring states the formula and the valid range); each option goes to
  # the side(s) whose function accepts it. A loss registered before this runs (by a module
  # the config file imports) gets its options here too.
  c.loss_options = _placeholders(
      [loss.option_defaults() for loss in map(losses.get, losses.names())])
  c.penalty = config_dict.placeholder(str)   # ganjax.penalties.names(): none | wgan_gp | r1 |
                                             # r2 | dragan | clip
  c.penalty_weight = config_dict.placeholder(object)  # λ/γ (clip: the clip value c); list = per member
  c.n_dis = config_dict.placeholder(int)     # discriminator updates per generator update
  # --- data and model
  c.dataset = 'ring'                 # ganjax.data.names(): ring | grid | gdpp_ring | digits |
                                     # mnist | cifar10 | celeba64
  c.data_dir = ''                    # TFDS data dir ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.data_seed = 0                    # data order; shared by all population members
  c.train_size = 0                   # 2D mixtures: a fixed training set of this many points,
                                     # drawn from data_seed (PacGAN: 100,000); 0: fresh draws
  c.model = 'mlp'                    # ganjax.models.names(): mlp | dcgan
  # One None placeholder per option of every registered model family (None = its default;
  # mlp: z_dim 16, hidden (128, 128, 128); dcgan: z_dim 100, width 64, spectral_norm in D,
  # batch_norm in G with statistics averaged over devices).
  c.model_options = _placeholders(
      [model.option_defaults() for model in map(models.get, models.names())])
  c.batch_size = 256                 # global batch (all devices, all processes)
  c.dtype = 'float32'                # compute dtype of both networks: float32 | bfloat16
                                     # (parameters, optimiser state, losses stay float32)
  # --- anti-collapse methods, for every loss and penalty
  c.pack = 1                         # D sees packs of m samples (PacGAN, Lin et al. 2018); the
                                     # batch on each device must divide by it; 1: no packing
  c.unroll_steps = 0                 # G's loss against D after k look-ahead updates
                                     # (Unrolled GAN, Metz et al. 2017); 0: none
  c.update_order = 'alternating'     # alternating: G's update sees the updated D;
                                     # simultaneous: D and G from one batch (PacGAN's code)
  c.g_bn_groups = 1                  # G's BatchNorm statistics per group of k (group j: examples
                                     # j, j+k, ...); PacGAN: k = pack (its k generator calls)
  # --- optimisation
  c.steps = 2000                     # generator updates
  c.g_optimizer = _optimizer()       # name: ganjax.optimizers.names(): adam | rmsprop | sgd;
                                     # learning_rate may be a list
  c.d_optimizer = _optimizer()
  c.ema_decay = 0.0                  # generator EMA decay (0 disables)
  c.seed = 0                         # member i of the population uses seed + i
  c.population = 1                   # independent GANs trained in one vmapped step
  c.population_chunk = config_dict.placeholder(int)  # members vmapped at once, chunks in a
                                     # loop; None: 4 on a CPU, all members on accelerators
  c.steps_per_call = 1               # steps per compiled call (a lax.scan): fewer dispatches
                                     # and input copies for small models on accelerators
  c.skip_nonfinite = False           # False: stop at a non-finite loss/gradient; True: skip
                                     # that update (counted in eval.json's skipped_steps)
  # --- schedules and outputs
  c.log_every = 100                  # progress line and TensorBoard scalars
  c.eval_every = 1000                # samples PNG and metrics (and at the end)
  c.eval_samples = 2500              # samples per evaluation (2,500 as in VEEGAN/PacGAN)
  c.eval_bn_refresh = 0              # >0: before sampling, this many training-mode passes of
                                     # batch_size noise at fixed weights update a copy of G's
                                     # BatchNorm running averages (PacGAN: 50); 0: as trained
  c.image_metrics = config_dict.placeholder(bool)  # None: on for labelled image datasets
  c.features = 'classifier'          # image metrics' features: classifier (fast, offline, ganjax
                                     # only) | inception (FID Inception-v3, comparable to papers)
  c.inception_weights = ''           # pt_inception-2015-12-05-6726825d.pth; '': $GANJAX_CACHE or
                                     # ~/.cache/ganjax, downloaded once
  c.final_eval_samples = 0           # >0: FID of this many samples vs the training split at the
                                     # end (50000: eval.json's fid50k, FID-50k); 0: off
  c.feature_steps = 1000             # training steps of the feature extractor (cached)
  c.kid_subsets = 100                # KID: subsets and subset size (Bińkowski et al. 2018)
  c.kid_subset_size = 1000
  c.checkpoint_every = 1000          # async Orbax save (and at the end)
  c.keep_checkpoints = 3             # checkpoints kept by the preservation policy
  c.allow_config_change = False      # resume a checkpoint whose experiment fields differ
                                     # (ganjax/workdir.py), recording them in eval.json
  return c


def _recipe(name: str, dataset: str, model: str, *, batch_size: int, steps: int,
            learning_rates: tuple[float, float], schedule: tuple[int, int, int]
            ) -> config_dict.ConfigDict:
  """`get_config` with the fields every recipe sets; `learning_rates` are (G, D) and
  `schedule` is (log_every, eval_every, checkpoint_every)."""
  c = get_config()
  c.name, c.dataset, c.model = name, dataset, model
  c.batch_size, c.steps = batch_size, steps
  c.g_optimizer.learning_rate, c.d_optimizer.learning_rate = learning_rates
  c.log_every, c.eval_every, c.checkpoint_every = schedule
  return c


def mixture_mlp(name: str, dataset: str) -> config_dict.ConfigDict:
  """The 2D-mixture recipe: MLP GAN, batch 256, 5,000 steps, TTUR rates (G 2e-4, D 5e-4,
  Heusel et al. 2017); configs/ring.py and grid.py use it."""
  c = _recipe(name, dataset, 'mlp', batch_size=256, steps=5000, learning_rates=(2e-4, 5e-4),
              schedule=(500, 1000, 1000))
  # WGAN-GP's λ on 2D toy data, as in Gulrajani et al.'s gan_toy.py (λ=10 is for images:
  # on modes of std 0.01 it flattens the critic; measured: 3 of 8 modes vs 8 with λ=0.1).
  c.penalty_weight = 0.1
  return c


def dcgan_images(name: str, dataset: str, steps: int) -> config_dict.ConfigDict:
  """The DCGAN image recipe (Radford et al. 2016: Adam 2e-4, β1 0.5, batch 64), with a
  generator EMA of 0.999; configs/digits.py, mnist.py, cifar10.py and celeba64.py use it."""
  c = _recipe(name, dataset, 'dcgan', batch_size=64, steps=steps, learning_rates=(2e-4, 2e-4),
              schedule=(500, 5000, 2000))
  c.model_options.width = 64
  c.ema_decay = 0.999
  c.eval_samples = 10000
  return c
