"""The rows of experiments/reproduce_2d.py: every published 2D row ganjax can run, with its
paper's numbers and recipe; the beyond table (every loss, plain, packed and unrolled, on
recipe B); and the probes, runs that test a cause of a row that does not reproduce.

A row is a config file plus the fields it overrides; the sources of every recipe setting
are in the config files (configs/pacgan_*.py: recipe A; configs/unrolled_*.py: recipe B).
`make_config` builds a row's config (or a part's: members [a, b), experiments/row_parts.py)
and `recipe` what defines its result, which a stored result is checked against.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os

from configs import default
from experiments.compare_losses import variants
from ganjax import checkpoint, losses, resolve, workdir


@dataclasses.dataclass(frozen=True)
class Row:
  table: str            # 'PacGAN T1', 'VEEGAN T1', 'GDPP T1', 'beyond' or 'probe'
  row: str
  dataset: str          # 'ring' or 'grid'
  config: str           # configs/<config>.py
  overrides: tuple      # ((dotted field, value), ...)
  seeds: int
  published: dict | None = None  # {'modes': (mean, se or None), 'hq': (percent, se or None)}
  note: str = ''
  of: str = ''          # a probe: the key of the row it probes

  @property
  def key(self) -> str:
    return f'{self.table}/{self.row}/{self.dataset}'


def _pacgan_rows() -> list[Row]:
  # fjxmlzn/PacGAN synthetic_data_experiments/results/Table1.png (reference/
  # published-2d-tables.md): modes and HQ %, mean ± s.e. over 10 runs.
  table = {'ring': {1: (6.3, 0.5, 98.2, 0.2), 2: (7.9, 0.1, 95.6, 2.0),
                    3: (7.8, 0.1, 97.7, 0.3), 4: (7.8, 0.1, 95.9, 1.4)},
           'grid': {1: (17.3, 0.8, 94.8, 0.7), 2: (23.8, 0.7, 91.3, 0.8),
                    3: (24.6, 0.4, 94.2, 0.4), 4: (24.8, 0.2, 93.6, 0.6)}}
  rows = []
  for dataset, by_pack in table.items():
    for m, (modes, modes_se, hq, hq_se) in by_pack.items():
      overrides = (('pack', m), ('batch_size', 100 * m), ('train_size', 100_000 * m),
                   ('g_bn_groups', m))
      rows.append(Row('PacGAN T1', 'GAN' if m == 1 else f'PacGAN{m}', dataset,
                      f'pacgan_{dataset}', overrides, 10,
                      {'modes': (modes, modes_se), 'hq': (hq, hq_se)}))
  return rows


def _recipe_b_rows() -> list[Row]:
  # VEEGAN T1 (akashgit/VEEGAN tab.png) and GDPP T1 (M-Elfeki/GDPP Figures/Fig_2.png),
  # 5 runs, no standard errors.
  veegan = {'GAN': {'ring': (1, 99.3), 'grid': (3.3, 0.5)},
            'Unrolled GAN': {'ring': (7.6, 35.6), 'grid': (23.6, 16.0)}}
  rows = []
  for name, by_dataset in veegan.items():
    for dataset, (modes, hq) in by_dataset.items():
      unroll = (('unroll_steps', 5),) if name == 'Unrolled GAN' else ()
      rows.append(Row('VEEGAN T1', name, dataset, f'unrolled_{dataset}', unroll, 5,
                      {'modes': (modes, None), 'hq': (hq, None)},
                      note=(_VEEGAN_GAN_NOTES if name == 'GAN' else _UNROLLED_NOTES)[dataset]))
  for dataset, (modes, hq) in {'ring': (6.8, 59.6), 'grid': (24.2, 28.7)}.items():
    rows.append(Row('GDPP T1', 'WGAN-GP', dataset, f'unrolled_{dataset}',
                    _WGAN + _N_DIS_ORDER, 5,
                    {'modes': (modes, None), 'hq': (hq, None)},
                    note=_GDPP_NOTES[dataset]))
  return rows


# Causes found for VEEGAN T1's GAN rows (experiments/recipe_b_torch.py, the report's last
# section): VEEGAN ran them in its own code (recipe C, whose discriminator is not published).
_VEEGAN_GAN_NOTES = {
    'ring': 'cause: the recipe. Under recipe B (the Unrolled GAN notebook) an independent '
            'PyTorch port agrees with ganjax (section below: with 10 more seeds, probe below, '
            'ganjax\'s 15 give 7.4 ± 0.4 modes and 14.7 ± 3.4% HQ, the port\'s 20 6.2 ± 0.6 '
            'and 10.7 ± 2.4%, Welch p 0.35 on HQ); VEEGAN ran this row in its own code '
            '(recipe C, not published in full)',
    'grid': 'cause: the recipe, as on the ring. With 10 more seeds (probe below) ganjax\'s 15 '
            'give 6.6 ± 0.7 modes and 2.9 ± 1.1% HQ: modes 4.5 s.e. above VEEGAN\'s, HQ within '
            '3 points. The PyTorch port of recipe B agrees with ganjax (section below; Welch p '
            '0.33 on modes against the 15); VEEGAN ran this row in its own code (recipe C)'}

_UNROLLED_NOTES = {
    'ring': 'modes agree (8 of 8 against 7.6). Cause: the ring, which VEEGAN does not give '
            'and which moves HQ by more than the gap. VEEGAN took Unrolled GAN from "the '
            'authors\' reference implementation" (its index.md), the notebook, whose ring has 7 '
            'distinct modes: on it (probe below) ganjax gives 8.0 modes and 64.0 ± 2.9% HQ. On '
            'ganjax\'s 8-mode ring, 15 seeds (probe below) give 17.7 ± 3.9%, and an independent '
            'PyTorch port of the same step 23.6 ± 6.7% in 9 seeds (Welch p 0.46, section '
            'below). VEEGAN\'s 35.6% lies between the two rings, 10.0 s.e. below the first and '
            '4.6 above the second',
    'grid': 'cause: the recipe. The independent PyTorch port of recipe B gives the same '
            'row (3 seeds: 21.0 ± 1.2 modes, 4.4 ± 2.3% HQ; Welch p 0.83 on HQ, section '
            'below), and in both HQ stays near 3% along training; the notebook trains the '
            'ring only, and the grid settings of VEEGAN\'s Unrolled GAN run are not published'}

# GDPP published no WGAN-GP code: λ and n_dis are Gulrajani et al.'s toy values. The grid
# row's probes (_probe_rows) measure how much the unpublished settings move it.
_GDPP_NOTES = {
    'ring': 'λ 0.1 (toy λ), n_dis 5. Cause: settings GDPP did not publish, as on the grid: '
            'λ 10 (probe below) gives 4.2 ± 0.7 modes and 0.3 ± 0.1% HQ, and GDPP\'s 6.8 and '
            '59.6% lie between the two λ. Not the data: on GDPP\'s own ring and mode count '
            '(probe below) ganjax gives 8.0 modes and 82.8 ± 2.7% HQ',
    'grid': 'λ 0.1 (toy λ), n_dis 5. Cause: settings GDPP did not publish, which move this '
            'row by more than the gap (probes below): λ 10 gives 17.4 modes and 1.9% HQ; '
            'GDPP\'s loop for its GAN (one D and one G update per batch) gives 3.8 and 1.8% '
            '(λ 0.1) or 0.2 and 0.0% (λ 10). GDPP\'s 24.2 and 28.7% lie on this row\'s path '
            'between 6,250 and 12,500 steps (13.6 and 9%, then 22.8 and 67%)'}

# WGAN-GP's 5 critic updates per generator update (Gulrajani et al.'s toy code) cannot share
# one batch with G's update: its rows alternate; recipe B's other rows are simultaneous.
_N_DIS_ORDER = (('update_order', 'alternating'),)
_WGAN = (('loss', 'wgan'), ('loss_options.generator', None))


def _beyond_rows() -> list[Row]:
  """Every loss variant plain, with pack 4 and with unroll 5, on recipe B, 5 seeds."""
  rows = []
  methods = {'plain': (), 'pack 4': (('pack', 4),), 'unroll 5': (('unroll_steps', 5),)}
  for label, (loss, options) in variants().items():
    fields = (('loss', loss), ('loss_options.generator', options.get('generator')))
    fields += _N_DIS_ORDER if losses.get(loss).n_dis > 1 else ()
    for dataset in ('ring', 'grid'):
      for method, extra in methods.items():
        rows.append(Row('beyond', f'{label}, {method}', dataset, f'unrolled_{dataset}',
                        fields + extra, 5))
  return rows


def _probe_rows() -> list[Row]:
  """Runs that test a cause of a published row ganjax does not reproduce: the settings
  they name changed, the rest as the row's. Their results feed the row's note."""
  # Seeds 5-14, on their own data stream: with the row's seeds 0-4, 15 independent runs.
  more_seeds = ((('seed', 5), ('data_seed', 1)),
                '10 more seeds (5-14) and another data stream')
  gdpp_loop = (('n_dis', 1), ('update_order', 'simultaneous'))  # gdppgan_Synthetic.py's loop
  lam10 = (_WGAN + _N_DIS_ORDER + (('penalty_weight', 10.0),),
           'λ 10 (Gulrajani et al.\'s default) instead of the toy code\'s 0.1')
  probes = {
      ('GDPP WGAN-GP, λ 10', 'grid'): lam10,
      ('GDPP WGAN-GP, GDPP\'s loop, λ 0.1', 'grid'): (
          _WGAN + gdpp_loop,
          'GDPP\'s training loop (one D and one G update from one batch) with the toy λ'),
      ('GDPP WGAN-GP, GDPP\'s loop, λ 10', 'grid'): (
          _WGAN + gdpp_loop + (('penalty_weight', 10.0),),
          'GDPP\'s training loop with Gulrajani et al.\'s default λ'),
      ('GDPP WGAN-GP, λ 10', 'ring'): lam10,
      ('GDPP WGAN-GP, GDPP\'s ring', 'ring'): (
          _WGAN + _N_DIS_ORDER + (('dataset', 'gdpp_ring'),),
          'GDPP\'s ring and mode count (data `gdpp_ring`: 7 distinct modes, one twice as '
          'likely, counted as two halves)')}
  rows = [Row('probe', name, dataset, f'unrolled_{dataset}', overrides, 5, note=note,
              of=f'GDPP T1/WGAN-GP/{dataset}')
          for (name, dataset), (overrides, note) in probes.items()]
  rows += [Row('probe', 'VEEGAN GAN, 10 more seeds', dataset, f'unrolled_{dataset}',
               more_seeds[0], 10, note=more_seeds[1], of=f'VEEGAN T1/GAN/{dataset}')
           for dataset in ('grid', 'ring')]
  # The Unrolled GAN ring row's HQ lies below the port's and VEEGAN's, within seed noise of
  # the port's. Its results are two parts of 5 members (--members 0 5 and 5 10), trained
  # side by side, one per core (67-68 minutes each), as 5-seed rows of the same configs.
  rows.append(Row('probe', 'VEEGAN Unrolled GAN, 10 more seeds', 'ring', 'unrolled_ring',
                  (('unroll_steps', 5),) + more_seeds[0], 10, note=more_seeds[1],
                  of='VEEGAN T1/Unrolled GAN/ring'))
  # VEEGAN ran Unrolled GAN with "five unrolling steps as suggested in the authors' reference
  # implementation" (akashgit/VEEGAN index.md): the notebook, whose ring is GDPP's.
  return rows + [Row('probe', 'VEEGAN Unrolled GAN, the notebook\'s ring', 'ring',
                     'unrolled_ring', (('unroll_steps', 5), ('dataset', 'gdpp_ring')), 5,
                     note='the Unrolled GAN notebook\'s ring (data `gdpp_ring`: 7 distinct '
                          'modes, one twice as likely, counted as two halves)',
                     of='VEEGAN T1/Unrolled GAN/ring')]


def all_rows() -> list[Row]:
  return _pacgan_rows() + _recipe_b_rows() + _beyond_rows() + _probe_rows()


def make_config(row: Row, quick: bool, steps_per_call: int = 1,
                members: tuple[int, int] | None = None):
  """The config of `row` (``--quick``: its tiny version), or of its members [a, b) where
  `members` is (a, b): a part of the row (experiments/row_parts.py)."""
  config = importlib.import_module(f'configs.{row.config}').get_config()
  config.update_from_flattened_dict(dict(row.overrides))
  config.population = row.seeds
  if quick:  # tiny networks and a few steps: this mode only checks that everything runs
    config.update_from_flattened_dict({
        'steps': 40, 'population': 2, 'model_options.hidden': (16, 16),
        'model_options.d_hidden': None if row.config.startswith('unrolled') else (16,),
        'batch_size': 8 * dict(row.overrides).get('pack', 1),
        'train_size': 400 * dict(row.overrides).get('pack', 1) if config.train_size else 0})
  if members is not None:
    first, stop = members
    if not 0 <= first < stop <= config.population:
      raise ValueError(f'--members {first} {stop}: {row.key} has members 0 to '
                       f'{config.population - 1}; give a and b with 0 <= a < b <= '
                       f'{config.population}.')
    config.seed += first  # member i of the row is member i - a of the part: same seed
    config.population = stop - first
  quarter = config.steps // 4
  config.eval_every = config.checkpoint_every = quarter
  config.log_every = max(1, config.steps // 50)  # a progress line (steps/s, ETA) every 2%
  # Steps per compiled call change the speed, not the result beyond round-off (bitwise on
  # the CPU; tests/test_train.py); they must divide the steps, evaluation and log points.
  config.steps_per_call = math.gcd(steps_per_call, config.steps, quarter, config.log_every)
  return config


# Recipe fields that change how a trained run is scored, never its weights: a stored row or
# part stale in these alone is rescored from its kept checkpoints (`--rescore`), not rerun.
# The generator's BatchNorm running averages are never read in training (training-mode
# BatchNorm uses the batch's statistics), so their momentum changes only samples
# (tests/test_bn_refresh.py checks the weights bitwise).
SCORING_ONLY = ('eval_bn_refresh', 'model_options.bn_momentum')


def recipe(config) -> dict:
  """What defines a row's result: its resolved config, flattened, without the fields that
  only schedule or report (`workdir.NOT_DEFINING`) except `steps` and `eval_bn_refresh`.
  Stored with the row; a stored row whose recipe differs from its config's today is stale
  and runs again (or, in `SCORING_ONLY` fields alone, is rescored)."""
  return _recipe_fields(resolve.resolve_config(config).config.to_json())


def _recipe_fields(config_json: str) -> dict:
  flat = workdir.flatten(json.loads(config_json))
  return {k: v for k, v in flat.items()
          if k in ('steps', 'eval_bn_refresh') or k.split('.')[0] not in workdir.NOT_DEFINING}


def run_changes(run_dir: str, config) -> dict | None:
  """``{field: [then, now]}`` where the newest readable checkpoint in `run_dir` was written
  under another recipe than `config`'s (`recipe`, `steps` aside: a run continues to more
  steps), a field it lacks counting as its default; None where `run_dir` holds no readable
  checkpoint."""
  folder = os.path.join(run_dir, 'checkpoints')
  steps = sorted((int(s) for s in os.listdir(folder) if s.isdigit()), reverse=True
                 ) if os.path.isdir(folder) else []
  for step in steps:
    try:
      with open(checkpoint.meta_path(folder, step)) as f:
        saved = json.load(f)['config']
    except (OSError, ValueError, KeyError, TypeError):
      continue
    then, now = _recipe_fields(saved), recipe(config)
    return {k: v for k, v in recipe_changes(then, now).items() if k != 'steps'}
  return None


def _defaults() -> dict:
  return workdir.flatten(json.loads(default.get_config().to_json()))


def stale_fields(stored: dict, row: Row, quick: bool = False) -> dict:
  """``{field: [stored, now]}`` where a stored row's (or part's) recipe differs from the
  row's (part's) today. A field added since the row was stored counts as its default
  (configs/default.py): a new option at its default changes no stored row."""
  members = tuple(stored['members']) if 'members' in stored else None
  return recipe_changes(stored.get('recipe', {}), recipe(make_config(row, quick,
                                                                     members=members)))


def recipe_changes(then: dict, now: dict) -> dict:
  """``{field: [then, now]}`` where recipe `then` (stored) differs from `now`; a field
  `then` lacks counts as its default (configs/default.py)."""
  defaults = _defaults()
  then = {**{k: defaults.get(k) for k in now}, **then}
  return {k: [then.get(k), now.get(k)] for k in sorted(then.keys() | now.keys())
          if then.get(k) != now.get(k)}
