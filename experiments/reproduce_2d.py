"""Reproduces the published 2D mode-collapse tables under each paper's recipe, then fills
the rows no paper has.

    .venv/bin/python experiments/reproduce_2d.py --list                 # rows, steps, status
    .venv/bin/python experiments/reproduce_2d.py --rows 'GDPP T1/WGAN-GP/ring' 'beyond/hinge, plain/ring'
    .venv/bin/python experiments/reproduce_2d.py --table reproduction   # every published row
    .venv/bin/python experiments/reproduce_2d.py --table beyond         # 36 rows, recipe B
    .venv/bin/python experiments/reproduce_2d.py --table probe          # causes of gaps
    .venv/bin/python experiments/reproduce_2d.py --quick                # smoke test (the suite)
    .venv/bin/python experiments/reproduce_2d.py --merge OTHER/reproduce_2d.json  # take rows
    .venv/bin/python experiments/reproduce_2d.py --rows KEY --members 0 2  # a part of a row

On a CPU a second core barely speeds up one row of these small networks, so run rows side
by side, one per core, into the same ``--out`` (each adds its row to the results file
under a lock). On 2 cores two unrolled recipe-B rows pinned this way took 79 minutes each;
one alone, on both cores, took 56-67 minutes: 1.55 times the throughput.

    taskset -c 0 .venv/bin/python experiments/reproduce_2d.py --rows 'beyond/hinge, unroll 5/ring' &
    taskset -c 1 .venv/bin/python experiments/reproduce_2d.py --rows 'beyond/hinge, unroll 5/grid'

On a lent GPU machine, experiments/gpu_rows.sh runs rows within one call; `--merge` takes
the rows it brings back (or another ``--out``'s) into the committed results.

A row too long for one sitting runs in parts, members [a, b) of its population at a time
(``--rows KEY --members A B``; experiments/row_parts.py): each part is stored as it
finishes, and the row is assembled once its parts cover every member.

The rows, their recipes and published numbers are in experiments/rows_2d.py. Every row
trains its seeds as one population under its paper's recipe
(`configs/pacgan_{ring,grid}.py`: recipe A; `configs/unrolled_{ring,grid}.py`: recipe
B; the sources of every setting are in those files), scores 2,500 samples per seed
(modes, high-quality share, reverse KL) at 25%, 50%, 75% and 100% of its steps, and is
stored in ``reproduce_2d.json`` when it finishes, with its steps and hardware. A rerun
skips stored rows and resumes an interrupted one from its checkpoint; the report
``reproduce_2d.md`` is rewritten from the json after every row. A recipe is never
shortened: ``--quick`` changes steps and networks and writes elsewhere, for the tests.

Verdicts: ``reproduced`` when the mean modes lie within 2 combined standard errors of
the published mean and the high-quality share within 2 combined standard errors or 3
points; where a paper gives no standard error (VEEGAN, GDPP) ganjax's alone is used.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import fcntl
import importlib
import json
import math
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
from scipy import stats  # pylint: disable=wrong-import-position

from experiments import row_parts  # pylint: disable=wrong-import-position
from experiments.compare_losses import mean_se, read_curves, show_progress  # pylint: disable=wrong-import-position
from experiments.row_parts import METRICS  # pylint: disable=wrong-import-position
from experiments.rows_2d import Row, all_rows  # pylint: disable=wrong-import-position
from ganjax import resolve, train, workdir  # pylint: disable=wrong-import-position

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


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


def recipe(config) -> dict:
  """What defines a row's result: its resolved config, flattened, without the fields that
  only schedule or report (`workdir.NOT_DEFINING`) except `steps`. Stored with the row; a
  stored row whose recipe differs from its config's today is stale and runs again."""
  flat = workdir.flatten(json.loads(resolve.resolve_config(config).config.to_json()))
  return {k: v for k, v in flat.items()
          if k == 'steps' or k.split('.')[0] not in workdir.NOT_DEFINING}


def stale_fields(stored: dict, row: Row, quick: bool = False) -> dict:
  """``{field: [stored, now]}`` where a stored row's (or part's) recipe differs from the
  row's (part's) today."""
  members = tuple(stored['members']) if 'members' in stored else None
  now = recipe(make_config(row, quick, members=members))
  then = stored.get('recipe', {})
  return {k: [then.get(k), now.get(k)] for k in sorted(then.keys() | now.keys())
          if then.get(k) != now.get(k)}


def _same_recipe(results: dict, row: Row, quick: bool = False) -> dict | None:
  """A stored result of another row with exactly this row's recipe (VEEGAN's GAN row is
  the beyond table's minimax row; GDPP's WGAN-GP row its wgan-gp row), or None."""
  now = recipe(make_config(row, quick))
  return next((r for r in results.values() if r.get('recipe') == now), None)


def reuse(result: dict, row: Row) -> dict:
  """`result` (of a row with the same recipe) as the result of `row`."""
  new = {k: v for k, v in result.items() if k not in ('published', 'verdict', 'z', 'note')}
  new['same_run_as'] = f'{result["table"]}/{result["row"]}/{result["dataset"]}'
  return _as_row(new, row)


def _as_row(result: dict, row: Row) -> dict:
  """`result` labelled as `row`'s: its names, published numbers, verdict and note."""
  result.update(table=row.table, row=row.row, dataset=row.dataset, config=row.config,
                overrides=dict(row.overrides))
  if row.published:
    result['published'] = {k: list(v) for k, v in row.published.items()}
    result['verdict'], result['z'] = verdict(row.published, result['ganjax'])
  if row.note:
    result['note'] = row.note
  return result


def _workdir(out: str, row: Row, members: tuple[int, int] | None = None) -> str:
  part = f'_members{members[0]}-{members[1]}' if members else ''
  return os.path.join(out, 'runs', row.key.replace(' ', '_').replace('/', '__') + part)


def hardware() -> str:
  device = jax.devices()[0]
  usable = len(os.sched_getaffinity(0))  # fewer than the host's under taskset
  cores = (f'{os.cpu_count()} host cores' if usable == os.cpu_count()
           else f'{usable} of {os.cpu_count()} host cores')
  return (f'{device.device_kind} x {jax.device_count()} ({device.platform}), '
          f'{cores}, jax {jax.__version__}')


def load(path: str) -> dict:
  """The rows stored in the results file `path`, by key ``table/row/dataset`` (a part of a
  row, in the parts file: ``table/row/dataset#a-b``)."""
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return {_key(r): r for r in json.load(f)}


def _key(result: dict) -> str:
  part = '#{}-{}'.format(*result['members']) if 'members' in result else ''
  return f'{result["table"]}/{result["row"]}/{result["dataset"]}{part}'


@contextlib.contextmanager
def locked(path: str):
  """Yields the rows stored in `path`, read under an exclusive lock, and writes them back
  (to a temporary file, then renamed: never half a file) when the block ends.

  Several processes may share one ``--out`` (on a CPU, rows pinned to different cores with
  ``taskset``): each adds its rows to what is on disk then, so none drops another's."""
  folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
  try:
    fcntl.flock(folder, fcntl.LOCK_EX)  # the folder's: no lock file left in it
    results = load(path)
    yield results
    with open(path + '.tmp', 'w') as f:
      json.dump(list(results.values()), f, indent=1)
    os.replace(path + '.tmp', path)
  finally:
    os.close(folder)  # releases the lock


def run_row(row: Row, out: str, quick: bool, steps_per_call: int = 1,
            members: tuple[int, int] | None = None) -> dict:
  """Trains `row` (or its members [a, b)) and returns its result, or {} if preempted."""
  config = make_config(row, quick, steps_per_call, members)
  run_dir = _workdir(out, row, members)
  start = time.time()
  summary = train.train_and_evaluate(config, run_dir)
  if summary['preempted']:
    return {}
  curves = {m: read_curves(run_dir, config.population, m) for m in METRICS}
  checkpoints = sorted({s for c in curves['modes'].values() for s, _ in c})
  along = {str(step): {m: [v for i in sorted(curves[m]) for s, v in curves[m][i] if s == step]
                       for m in METRICS}
           for step in checkpoints}
  per_seed = [{k: m[k] for k in METRICS} for m in summary['members']]
  result = {
      'seeds': config.population, 'steps': config.steps,
      'hardware': hardware(), 'steps_per_call': config.steps_per_call,
      'recipe': recipe(config),
      'wall_time_s': round(time.time() - start, 1),
      'per_seed': per_seed, 'along_per_seed': along,
      **row_parts.summarize(per_seed, along)}
  if members:
    result['members'] = list(members)
  return _as_row(result, row)


def _combined(se_a, se_b):
  ses = [s for s in (se_a, se_b) if s is not None and math.isfinite(s)]
  return math.sqrt(sum(s * s for s in ses)) if ses else float('nan')


def verdict(published: dict, ours: dict) -> tuple[str, dict]:
  """'reproduced' or 'not reproduced', and the differences in combined standard errors."""
  z = {}
  for key in ('modes', 'hq'):
    (p, p_se), (g, g_se) = published[key], ours[key]
    se = _combined(p_se, g_se)
    z[key] = (g - p) / se if se > 0 else (0.0 if g == p else math.inf)
  hq_gap = abs(ours['hq'][0] - published['hq'][0])
  ok = abs(z['modes']) <= 2 and (abs(z['hq']) <= 2 or hq_gap <= 3)
  return ('reproduced' if ok else 'not reproduced'), {k: round(v, 2) for k, v in z.items()}


def _fmt(mean_se_pair, digits=1):
  mean, se = mean_se_pair
  if se is None:
    return f'{mean:.{digits}f}'
  return f'{mean:.{digits}f} ± {se:.{digits}f}' if math.isfinite(se) else f'{mean:.{digits}f}'


def _device(result: dict) -> str:
  """'NVIDIA H200' or 'cpu' from a row's hardware string (a row run in parts on several
  machines: 'cpu + NVIDIA H200')."""
  devices = [h.split(' x ')[0] for h in result['hardware'].split('; ')]
  return ' + '.join(dict.fromkeys(devices))


_SECTIONS = {
    'reproduction': [
        '## Reproduction', '', '| table | row | data | published modes | ganjax modes | '
        'published HQ % | ganjax HQ % | z (modes, HQ) | verdict | steps, seeds, device | '
        'modes (HQ %) at 25/50/75/100% |', '|---|---|---|---|---|---|---|---|---|---|---|'],
    'beyond': [
        '', '## Beyond: every loss, plain, packed and unrolled (recipe B)', '',
        'Numbers no paper has. Recipe B (configs/unrolled_*.py), 5 seeds each.', '',
        '| row | data | modes | HQ % | reverse KL | steps, device | modes at 25/50/75/100% |',
        '|---|---|---|---|---|---|---|'],
    'probe': [
        '', '## Probes: the cause of a row that does not reproduce', '',
        'Each probe is the published row it names, run with the change of its third column; '
        'that row\'s note in the reproduction table says what they show.', '',
        '| probe | data | change | modes | HQ % | reverse KL | steps, seeds, device | '
        'modes (HQ %) at 25/50/75/100% |', '|---|---|---|---|---|---|---|---|']}


def adds_seeds_only(probe: dict, probed: dict | None) -> bool:
  """Whether a probe's result only adds seeds (other `seed`, `data_seed`) to the result of
  the row it probes."""
  if probed is None or probe.get('config') != probed.get('config'):
    return False
  ours, theirs = probe['overrides'], probed.get('overrides', {})
  return {k for k in {*ours, *theirs} if ours.get(k) != theirs.get(k)} <= {'seed', 'data_seed'}


def all_seeds(key: str, results: dict, rows: list[Row]) -> list[dict]:
  """The per-seed results of row `key` and of each probe of it that only adds seeds."""
  runs = list(results[key]['per_seed']) if key in results else []
  for probe in rows:
    if probe.of == key and probe.key in results and adds_seeds_only(results[probe.key],
                                                                    results.get(key)):
      runs += results[probe.key]['per_seed']
  return runs


def pooled(probe: dict, probed: dict | None) -> str:
  """A probe that only adds seeds pooled with the row it probes: modes and HQ % over all
  their seeds, or '' for any other probe."""
  if not adds_seeds_only(probe, probed):
    return ''
  runs = probed['per_seed'] + probe['per_seed']
  modes = mean_se([s['modes'] for s in runs])
  hq = mean_se([100 * s['hq_fraction'] for s in runs])
  return f'. All {len(runs)} seeds: {_fmt(modes)} modes, {_fmt(hq)}% HQ'


def _section(row: Row) -> str:
  return row.table if row.table in ('beyond', 'probe') else 'reproduction'


def write_report(out: str, results: dict, rows: list[Row], quick: bool) -> None:
  lines = ['# Published 2D mode-collapse tables, reproduced', '',
           f'Generated {datetime.datetime.now():%Y-%m-%d %H:%M} by '
           '`experiments/reproduce_2d.py` from `reproduce_2d.json`, whose rows may come from '
           'several runs; each row names the device it ran on.',
           'Protocol: 2,500 samples per seed; high quality (HQ) = within 3 std of the '
           'nearest mode; a mode counts when it holds one HQ sample. Mean ± standard error '
           'over seeds (ganjax) or runs (papers). z: difference in combined standard errors.',
           'ganjax\'s ring has 8 distinct modes; GDPP\'s and the Unrolled GAN notebook\'s '
           'have 7 (`np.linspace(0, 2π, 8)` repeats an angle), whose doubled mode GDPP\'s '
           'evaluation counts as two (README; dataset `gdpp_ring`).', '']
  if quick:
    lines += ['**Quick mode**: tiny networks and 40 steps; nothing here is a result.', '']
  for table, header in _SECTIONS.items():
    chosen = [r for r in rows if _section(r) == table]
    lines += header
    for row in chosen:
      r = results.get(row.key)
      changed = stale_fields(r, row, quick) if r is not None else {}
      if r is None or changed:  # the published numbers, and what the row would cost
        stale = f'stale, to rerun: {workdir.describe(changed)}' if changed else ''
        steps = make_config(row, quick).steps
        if table == 'reproduction':
          cells = [row.table, row.row, row.dataset, _fmt(row.published['modes']), 'not run',
                   _fmt(row.published['hq']), 'not run', '', stale or row.note,
                   f'{steps:,}, {row.seeds}', '']
        elif table == 'beyond':
          cells = [row.row, row.dataset, 'not run', stale or row.note, '', f'{steps:,}', '']
        else:
          cells = [row.row, row.dataset, row.note, stale or 'not run', '', '',
                   f'{steps:,}, {row.seeds}', '']
        lines.append('| ' + ' | '.join(cells) + ' |')
        continue
      points = r['along_training'].values()
      along = ' / '.join(f'{v["modes"][0]:.1f}' for v in points)
      along_hq = ' / '.join(f'{v["modes"][0]:.1f} ({v["hq"][0]:.0f})' for v in points)
      ours = [_fmt(r['ganjax']['modes']), _fmt(r['ganjax']['hq']),
              _fmt(r['ganjax']['reverse_kl'], 2), f'{r["steps"]:,}, {_device(r)}']
      if table == 'reproduction':
        p = r.get('published', {})
        cells = [r['table'], r['row'], r['dataset'], _fmt(p['modes']), _fmt(r['ganjax']['modes']),
                 _fmt(p['hq']), _fmt(r['ganjax']['hq']),
                 f'{r["z"]["modes"]}, {r["z"]["hq"]}', r['verdict'] + (
                     f' ({row.note})' if row.note else ''),  # today's note: causes found later
                 f'{r["steps"]:,}, {r["seeds"]}, {_device(r)}', along_hq]
      elif table == 'beyond':
        cells = [r['row'], r['dataset']] + ours + [along]
      else:
        change = row.note + pooled(r, results.get(row.of))
        cells = [r['row'], r['dataset'], change] + ours[:3] + [
            f'{r["steps"]:,}, {r["seeds"]}, {_device(r)}', along_hq]
      lines.append('| ' + ' | '.join(cells) + ' |')
  lines += _torch_check(out, results, rows)
  done = [r for r in results.values()]
  if done:
    lines += ['', 'Hardware: ' + '; '.join(sorted({r['hardware'] for r in done})) + '.']
  with open(os.path.join(out, 'reproduce_2d.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')


def torch_result_name(dataset: str, order: str, unroll: int = 0) -> str:
  """The file experiments/recipe_b_torch.py writes (named here: the report reads it without
  importing PyTorch, which the suite's machines may lack)."""
  return f'recipe_b_torch_{dataset}_{order}' + (f'_unroll{unroll}' if unroll else '') + '.json'


def _torch_check(out: str, results: dict, rows: list[Row]) -> list[str]:
  """The report's section on experiments/recipe_b_torch.py's runs found in `out`, beside
  ganjax's runs of the same recipe (VEEGAN T1's GAN and Unrolled GAN rows, with the seeds
  their probes add)."""
  lines = []
  for unroll, row in ((0, 'GAN'), (5, 'Unrolled GAN')):
    for dataset in ('ring', 'grid'):
      for order in ('simultaneous', 'alternating'):
        path = os.path.join(out, torch_result_name(dataset, order, unroll))
        if not os.path.exists(path):
          continue
        with open(path) as f:
          t = json.load(f)
        key = f'VEEGAN T1/{row}/{dataset}'
        same = key in results and results[key]['recipe'].get('update_order') == order
        ours = all_seeds(key, results, rows) if same else []
        theirs = [100 * run[-1]['hq_fraction'] for run in t['per_seed']]
        hq = [100 * s['hq_fraction'] for s in ours]
        lines.append(f'| {row} | {dataset} | {order} | {_fmt(t["summary"]["modes"])} | '
                     f'{_fmt(t["summary"]["hq"])} | {t["seeds"]}, {t["steps"]:,} | ' + (
                         f'{_fmt(mean_se([s["modes"] for s in ours]))} | {_fmt(mean_se(hq))} '
                         f'| {len(ours)} | {welch(hq, theirs)} |' if ours else ' |  |  |  |'))
  if not lines:
    return []
  return ['', '## Recipe B in PyTorch: an independent check', '',
          '`experiments/recipe_b_torch.py` trains recipe B\'s GAN and Unrolled GAN rows (the '
          'Unrolled GAN notebook, minimax generator; unrolled: 5 look-ahead Adam updates of D) '
          'in PyTorch, written from the notebook without ganjax; only the metric is ganjax\'s. '
          'Where it agrees with ganjax and both disagree with a published row, the recipe, not '
          'ganjax, is what differs.', '',
          'ganjax\'s columns pool the row\'s seeds with those its probes add. The last '
          'column is Welch\'s t-test of the two HQ means on the per-seed final HQ '
          '(t < 0: ganjax lower; p under 0.05: a difference beyond seed noise).', '',
          '| row | data | update order | PyTorch modes | PyTorch HQ % | seeds, steps '
          '| ganjax modes | ganjax HQ % | ganjax seeds | HQ: Welch t (df), p |',
          '|---|---|---|---|---|---|---|---|---|---|'] + lines


def welch(ours: list[float], theirs: list[float]) -> str:
  """Welch's t-test of two samples' means, as ``t (df), p``; '-' where it is undefined (a
  sample of one, or both without spread)."""
  if min(len(ours), len(theirs)) < 2 or np.var(ours) + np.var(theirs) == 0:
    return '-'
  test = stats.ttest_ind(ours, theirs, equal_var=False)
  return f'{test.statistic:+.2f} ({test.df:.1f}), {test.pvalue:.2f}'


def merge(results: dict, others: list[str], by_key: dict, quick: bool = False) -> None:
  """Adds to `results` each row of the results files `others` that it lacks or holds
  stale; a row stale for today's recipe, or one `results` holds fresh, is not taken.
  (`results` may be a parts file's contents and `others` parts files: the same rules.)"""
  for other in others:
    for key, result in load(other).items():
      row = by_key.get(key.split('#')[0])
      if row is None or stale_fields(result, row, quick):
        print(f'{other}: {key}: {"unknown" if row is None else "stale"}, not taken')
      elif key in results and not stale_fields(results[key], row, quick):
        if results[key] != result:
          print(f'{other}: {key}: a run of this recipe is stored, kept')
      else:
        results[key] = result
        print(f'{other}: {key}: taken')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rows', nargs='+', default=None, help='row keys (see --list)')
  parser.add_argument('--table', choices=('reproduction', 'beyond', 'probe', 'all'),
                      default=None)
  parser.add_argument('--list', action='store_true', help='print the rows and their status')
  parser.add_argument('--merge', nargs='+', default=None, metavar='JSON',
                      help='add the rows of other results files (another --out, a GPU '
                           'machine\'s) that --out lacks or holds stale, and rewrite the report')
  parser.add_argument('--members', nargs=2, type=int, default=None, metavar=('A', 'B'),
                      help='run members A to B-1 of the one row given by --rows, as a part '
                           '(experiments/row_parts.py); the row is assembled once its stored '
                           'parts cover every member')
  parser.add_argument('--quick', action='store_true', help='tiny networks, 40 steps')
  parser.add_argument('--out', default=None, help=f'output folder (default {OUT})')
  parser.add_argument('--steps_per_call', type=int, default=1,
                      help='steps per compiled call (speed only; e.g. 50 on an accelerator); '
                           'reduced to divide each row\'s evaluation and log points')
  args = parser.parse_args(argv)
  show_progress()
  if args.steps_per_call < 1:
    parser.error(f'--steps_per_call must be at least 1, got {args.steps_per_call}.')
  out = args.out or (os.path.join(OUT, 'quick') if args.quick else OUT)
  os.makedirs(out, exist_ok=True)
  path = os.path.join(out, 'reproduce_2d.json')
  results = load(path)
  rows = all_rows()
  by_key = {r.key: r for r in rows}
  unknown = [k for k in args.rows or () if k not in by_key]
  if unknown:
    parser.error(f'unknown rows {unknown}; see --list for the valid ones.')
  if args.list:
    parts = load(_parts_path(path))
    for r in rows:
      done = results.get(r.key)
      status = '-' if not done else 'stale' if stale_fields(done, r) else 'done'
      stored = row_parts.stored_members(parts, r.key) if status != 'done' else []
      print(f'{r.key:45s} {status:5s} seeds {r.seeds}, '
            f'config {r.config} {dict(r.overrides)}'
            + (f'; parts stored: members {stored}' if stored else ''))
    return
  if args.merge:
    other_parts = [p for p in map(_parts_path, args.merge) if os.path.exists(p)]
    if other_parts:
      with locked(_parts_path(path)) as parts:
        merge(parts, other_parts, by_key, args.quick)
    with locked(path) as results:
      merge(results, args.merge, by_key, args.quick)
      for row in rows:
        if take_parts(results, path, row, args.quick):
          print(f'{row.key}: every member stored: assembled from its parts')
      write_report(out, results, rows, args.quick)
    return
  if args.members:
    if not args.rows or len(args.rows) != 1:
      parser.error('--members runs a part of one row: give that row alone with --rows.')
    try:
      make_config(by_key[args.rows[0]], args.quick, members=tuple(args.members))
    except ValueError as e:
      parser.error(str(e))
    run_part(by_key[args.rows[0]], tuple(args.members), out, path, rows, args)
    return
  if args.rows:
    todo = [by_key[k] for k in args.rows]
  elif args.table:
    todo = [r for r in rows if args.table in ('all', _section(r))]
  elif args.quick:
    todo = [by_key['PacGAN T1/PacGAN2/ring'], by_key['beyond/hinge, unroll 5/grid']]
  else:
    parser.error('choose --rows, --table, --list or --quick.')
  for i, row in enumerate(todo):
    if row.key in results:
      changed = stale_fields(results[row.key], row, args.quick)
      if not changed:
        print(f'[{i + 1}/{len(todo)}] {row.key}: stored in {path}', flush=True)
        continue
      print(f'[{i + 1}/{len(todo)}] {row.key}: stored, but its recipe changed since '
            f'({workdir.describe(changed)}): running it again', flush=True)
      del results[row.key]
      shutil.rmtree(_workdir(out, row), ignore_errors=True)
    same = _same_recipe(results, row, args.quick)
    if same is not None:
      print(f'[{i + 1}/{len(todo)}] {row.key}: the recipe of {same["table"]}/{same["row"]}/'
            f'{same["dataset"]}, whose result it takes', flush=True)
      with locked(path) as results:
        results[row.key] = reuse(same, row)
      continue
    config = make_config(row, args.quick, args.steps_per_call)
    print(f'[{i + 1}/{len(todo)}] {datetime.datetime.now():%H:%M:%S} {row.key}: '
          f'{config.steps} steps x {config.population} seeds', flush=True)
    result = run_row(row, out, args.quick, args.steps_per_call)
    if not result:
      print('Preempted; rerun the same command to resume.')
      sys.exit(0)
    print(f'    modes {_fmt(result["ganjax"]["modes"])}, HQ {_fmt(result["ganjax"]["hq"])}%'
          + (f', {result["verdict"]}' if 'verdict' in result else '') +
          f' ({result["wall_time_s"]:.0f} s)', flush=True)
    with locked(path) as results:  # after every row: nothing lost on interruption
      results[row.key] = result
      write_report(out, results, rows, args.quick)
  with locked(path) as results:
    write_report(out, results, rows, args.quick)
  print(f'Wrote {os.path.join(out, "reproduce_2d.md")}.')


def _parts_path(results_path: str) -> str:
  return os.path.join(os.path.dirname(results_path), row_parts.PARTS_FILE)


def take_parts(results: dict, path: str, row: Row, quick: bool) -> bool:
  """Assembles `row` into `results` from the fresh parts stored beside `path`, where they
  cover all its members and `results` holds no fresh run of it. Whether it did."""
  if row.key in results and not stale_fields(results[row.key], row, quick):
    return False
  parts = [p for k, p in load(_parts_path(path)).items()
           if k.split('#')[0] == row.key and not stale_fields(p, row, quick)]
  config = make_config(row, quick)
  result = row_parts.assemble(parts, config.population, recipe(config))
  if result is None:
    return False
  results[row.key] = _as_row(result, row)
  return True


def run_part(row: Row, members: tuple[int, int], out: str, path: str, rows: list[Row],
             args) -> None:
  """Runs members [a, b) of `row` unless the row or this part is stored, stores the part,
  and assembles the row when its parts are complete."""
  key = '{}#{}-{}'.format(row.key, *members)
  results = load(path)
  if row.key in results and not stale_fields(results[row.key], row, args.quick):
    print(f'{row.key}: stored in {path}; no part of it to run', flush=True)
    return
  stored = load(_parts_path(path)).get(key)
  if stored is None or stale_fields(stored, row, args.quick):
    if stored is not None:
      shutil.rmtree(_workdir(out, row, members), ignore_errors=True)
    config = make_config(row, args.quick, args.steps_per_call, members)
    print(f'{datetime.datetime.now():%H:%M:%S} {key}: {config.steps} steps x '
          f'{config.population} seeds (from seed {config.seed})', flush=True)
    part = run_row(row, out, args.quick, args.steps_per_call, members)
    if not part:
      print('Preempted; rerun the same command to resume.')
      sys.exit(0)
    print(f'    modes {_fmt(part["ganjax"]["modes"])}, HQ {_fmt(part["ganjax"]["hq"])}% '
          f'({part["wall_time_s"]:.0f} s)', flush=True)
    with locked(_parts_path(path)) as parts:
      parts[key] = part
  else:
    print(f'{key}: stored in {_parts_path(path)}', flush=True)
  with locked(path) as results:
    if take_parts(results, path, row, args.quick):
      print(f'{row.key}: every member stored: assembled from its parts', flush=True)
    write_report(out, results, rows, args.quick)


if __name__ == '__main__':
  main()
