"""Every configuration field, with its default. Other configs import and override it.

    ./run.sh --config=configs/default.py --workdir=runs/default

Fields left as `placeholder`s (None) take the loss's default from
`ganjax.train.LOSS_DEFAULTS` (for example WGAN: penalty wgan_gp, weight 10,
n_dis 5), so `--loss=wgan` alone gives a sensible WGAN-GP.
"""

from ml_collections import config_dict


def _optimizer() -> config_dict.ConfigDict:
  # `object` fields accept a number or, with a population, one number per member.
  # b1/b2 left as None take the loss's default (ganjax.train.LOSS_DEFAULTS).
  return config_dict.ConfigDict(dict(
      name='adam', learning_rate=config_dict.FieldReference(1e-4, field_type=object),
      b1=config_dict.placeholder(float), b2=config_dict.placeholder(float)))


def get_config() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.name = 'default'                 # used for the default workdir runs/<name>
  # --- objective
  c.loss = 'classic'                 # one of ganjax.losses.names()
  # Keyword arguments for the loss; None = the loss's own default; each goes to the side(s)
  # whose function accepts it (ganjax.losses docstrings).
  c.loss_options = config_dict.ConfigDict(dict(
      form=config_dict.placeholder(str),             # classic: softplus | bce | direct
      generator=config_dict.placeholder(str),        # classic: non_saturating | minimax
      label_smoothing=config_dict.placeholder(float),  # classic, relativistic (one-sided)
      margin=config_dict.placeholder(float),         # hinge
      real_target=config_dict.placeholder(float),    # least_squares b
      fake_target=config_dict.placeholder(float),    # least_squares a
      target=config_dict.placeholder(float),         # least_squares generator c
  ))
  c.penalty = config_dict.placeholder(str)   # none | wgan_gp | r1 | r2 | dragan | clip
  c.penalty_weight = config_dict.placeholder(object)  # λ/γ (clip: the clip value c); list = per member
  c.n_dis = config_dict.placeholder(int)     # discriminator updates per generator update
  # --- data and model
  c.dataset = 'ring'                 # ring | grid | digits | mnist | cifar10 | celeba64
  c.data_dir = ''                    # TFDS data dir ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.data_seed = 0                    # data order; shared by all population members
  c.model = 'mlp'                    # mlp | dcgan
  c.model_options = config_dict.ConfigDict(dict(  # None = the model's default
      z_dim=config_dict.placeholder(int),            # noise dimension (mlp 16, dcgan 100)
      hidden=config_dict.placeholder(tuple),         # mlp: hidden widths (128, 128, 128)
      width=config_dict.placeholder(int),            # dcgan: base channel count (64)
      spectral_norm=config_dict.placeholder(bool),   # dcgan: spectral norm in D (False)
      batch_norm=config_dict.placeholder(bool),      # dcgan: batch norm in G (False); its
                                                     # statistics are averaged over devices
  ))
  c.batch_size = 256                 # global batch (all devices, all processes)
  # --- optimisation
  c.steps = 2000                     # generator updates
  c.g_optimizer = _optimizer()      # name: adam | sgd | rmsprop; learning_rate may be a list
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
  c.image_metrics = config_dict.placeholder(bool)  # None: on for labelled image datasets
  c.feature_steps = 1000             # training steps of the feature extractor (cached)
  c.kid_subsets = 100                # KID: subsets and subset size (Bińkowski et al. 2018)
  c.kid_subset_size = 1000
  c.checkpoint_every = 1000          # async Orbax save (and at the end)
  c.keep_checkpoints = 3             # checkpoints kept by the preservation policy
  return c
