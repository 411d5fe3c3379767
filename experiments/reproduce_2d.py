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
    .venv/bin/python experiments/reproduce_2d.py --rows KEY --rescore   # new scoring, old runs

On a CPU a second core barely speeds up one row of these small networks, so run rows side
by side, one per core, into the same ``--out`` (each adds its row to the results file
under a lock). On 2 cores two unrolled recipe-B rows pinned this way took 79 minutes each;
one alone, on both cores, took 56-67 minutes: 1.55 times the throughput.

    taskset -c 0 .venv/bin/python experiments/reproduce_2d.py --rows 'beyond/hinge, unroll 5/ring' &
    taskset -c 1 .venv/bin/python experiments/reproduce_2d.py --rows 'beyond/hinge, unroll 5/grid'

On a lent GPU machine, experiments/gpu_rows.sh runs rows, or parts of rows (``KEY#A-B``),
within one call; `--merge` takes the rows and parts it brings back (or another ``--out``'s)
into the committed results.

A row too long for one sitting runs in parts, members [a, b) of its population at a time
(``--rows KEY --members A B``; experiments/row_parts.py): each part is stored as it
finishes, and the row is assembled once its parts cover every member.

The rows, their recipes and published numbers are in experiments/rows_2d.py, the report's
tables and verdicts in experiments/report_2d.py. Every row
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
import datetime
import fcntl
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from experiments import row_parts  # pylint: disable=wrong-import-position
from experiments.compare_losses import read_curves, show_progress  # pylint: disable=wrong-import-position
from experiments.row_parts import METRICS, load  # pylint: disable=wrong-import-position
from experiments.report_2d import (  # pylint: disable=wrong-import-position
    plus_minus, section, verdict, write_report)
from experiments.rows_2d import (  # pylint: disable=wrong-import-position
    SCORING_ONLY, Row, all_rows, make_config, recipe, recipe_changes, run_changes, stale_fields)
from ganjax import train, workdir  # pylint: disable=wrong-import-position

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def _same_recipe(results: dict, row: Row, quick: bool = False) -> dict | None:
  """A stored result of another row with exactly this row's recipe (VEEGAN's GAN row is
  the beyond table's minimax row; GDPP's WGAN-GP row its wgan-gp row), or None."""
  now = recipe(make_config(row, quick))
  return next((r for r in results.values() if 'recipe' in r
               and not recipe_changes(r['recipe'], now)), None)


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


def _drop_other_run(run_dir: str, config) -> None:
  """Removes the run folder of a stale stored result unless its newest checkpoint was
  written under `config`'s recipe. Such a folder is the rerun itself, stopped (SIGTERM,
  preemption) before it could store its result: it resumes, never starts over."""
  changes = run_changes(run_dir, config)
  if changes != {}:
    if changes:
      print(f'{run_dir}: its checkpoints were written under another recipe '
            f'({workdir.describe(changes)}): removed', flush=True)
    shutil.rmtree(run_dir, ignore_errors=True)


def hardware() -> str:
  device = jax.devices()[0]
  usable = len(os.sched_getaffinity(0))  # fewer than the host's under taskset
  cores = (f'{os.cpu_count()} host cores' if usable == os.cpu_count()
           else f'{usable} of {os.cpu_count()} host cores')
  return (f'{device.device_kind} x {jax.device_count()} ({device.platform}), '
          f'{cores}, jax {jax.__version__}')


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
  # {metric: {member: {step: value}}}: a run resumed at its last step scores that step
  # again (the same numbers, from fixed evaluation noise); one value per step is kept.
  curves = {m: {i: dict(c) for i, c in read_curves(run_dir, config.population, m).items()}
            for m in METRICS}
  checkpoints = sorted({s for c in curves['modes'].values() for s in c})
  along = {str(step): {m: [curves[m][i][step] for i in sorted(curves[m]) if step in curves[m][i]]
                       for m in METRICS}
           for step in checkpoints}
  per_seed = [{k: m[k] for k in METRICS} for m in summary['members']]
  result = {
      'seeds': config.population, 'steps': config.steps,
      'hardware': hardware(), 'steps_per_call': config.steps_per_call,
      'recipe': recipe(config),
      # This sitting, and the training time of the sittings before it (a resumed run).
      'wall_time_s': round(time.time() - start + summary['train_time_s']
                           - summary['wall_time_s'], 1),
      'per_seed': per_seed, 'along_per_seed': along,
      **row_parts.summarize(per_seed, along)}
  if members:
    result['members'] = list(members)
  return _as_row(result, row)


def merge(results: dict, others: list[str], by_key: dict, quick: bool = False) -> None:
  """Adds to `results` each row of the results files `others` that it lacks or holds
  stale; a row stale for today's recipe, or one `results` holds fresh, is not taken.
  (`results` may be a parts file's contents and `others` parts files: the same rules.)"""
  for other in others:
    for key, result in load(other).items():
      row = by_key.get(row_parts.row_of(key))
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
  parser.add_argument('--rescore', action='store_true',
                      help='rescore the stored parts and rows of --rows whose recipe changed '
                           'only in fields that cannot change the weights (rows_2d.SCORING_ONLY) '
                           'from their kept checkpoints, instead of training them again')
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
  if args.rescore:
    if not args.rows:
      parser.error('--rescore needs --rows.')
    for row in (by_key[k] for k in args.rows):
      rescore_row(row, out, path, rows, args.quick)
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
    todo = [r for r in rows if args.table in ('all', section(r))]
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
      _drop_other_run(_workdir(out, row), make_config(row, args.quick, args.steps_per_call))
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
    print(f'    {_scores(result)}'
          + (f', {result["verdict"]}' if 'verdict' in result else '') +
          f' ({result["wall_time_s"]:.0f} s)', flush=True)
    with locked(path) as results:  # after every row: nothing lost on interruption
      results[row.key] = result
      write_report(out, results, rows, args.quick)
  with locked(path) as results:
    write_report(out, results, rows, args.quick)
  print(f'Wrote {os.path.join(out, "reproduce_2d.md")}.')


def _scores(result: dict) -> str:
  ours = result['ganjax']
  return f'modes {plus_minus(ours["modes"])}, HQ {plus_minus(ours["hq"])}%'


def _parts_path(results_path: str) -> str:
  return os.path.join(os.path.dirname(results_path), row_parts.PARTS_FILE)


def take_parts(results: dict, path: str, row: Row, quick: bool) -> bool:
  """Assembles `row` into `results` from the fresh parts stored beside `path`, where they
  cover all its members and `results` holds no fresh run of it. Whether it did."""
  if row.key in results and not stale_fields(results[row.key], row, quick):
    return False
  parts = [p for k, p in load(_parts_path(path)).items()
           if row_parts.row_of(k) == row.key and not stale_fields(p, row, quick)]
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
  key = row_parts.part_key(row.key, members)
  results = load(path)
  if row.key in results and not stale_fields(results[row.key], row, args.quick):
    print(f'{row.key}: stored in {path}; no part of it to run', flush=True)
    return
  stored = load(_parts_path(path)).get(key)
  if stored is None or stale_fields(stored, row, args.quick):
    config = make_config(row, args.quick, args.steps_per_call, members)
    if stored is not None:
      _drop_other_run(_workdir(out, row, members), config)
    print(f'{datetime.datetime.now():%H:%M:%S} {key}: {config.steps} steps x '
          f'{config.population} seeds (from seed {config.seed})', flush=True)
    part = run_row(row, out, args.quick, args.steps_per_call, members)
    if not part:
      print('Preempted; rerun the same command to resume.')
      sys.exit(0)
    print(f'    {_scores(part)} ({part["wall_time_s"]:.0f} s)', flush=True)
    with locked(_parts_path(path)) as parts:  # a verdict on some seeds is none: the row's
      parts[key] = {k: v for k, v in part.items() if k not in ('verdict', 'z', 'published')}
  else:
    print(f'{key}: stored in {_parts_path(path)}', flush=True)
  with locked(path) as results:
    if take_parts(results, path, row, args.quick):
      print(f'{row.key}: every member stored: assembled from its parts', flush=True)
    write_report(out, results, rows, args.quick)


def rescore(stored: dict, row: Row, out: str, quick: bool) -> dict | None:
  """`stored` (a row's or a part's result) rescored from the checkpoints kept in its run
  folder under the row's recipe today, where the two differ only in `SCORING_ONLY` fields;
  None (with the reason printed) where they differ in others or the last step's checkpoint
  is gone. The steps whose checkpoints are gone leave the along-training record."""
  members = tuple(stored['members']) if 'members' in stored else None
  name = row_parts.part_key(row.key, members) if members else row.key
  changed = stale_fields(stored, row, quick)
  training = {k: v for k, v in changed.items() if k not in SCORING_ONLY}
  if training:
    print(f'{name}: its recipe changed in fields that train differently '
          f'({workdir.describe(training)}): run it again instead', flush=True)
    return None
  config = make_config(row, quick, members=members)
  run_dir = _workdir(out, row, members)
  if not os.path.isdir(os.path.join(run_dir, 'checkpoints')):
    print(f'{name}: no checkpoints in {run_dir}: run it again instead', flush=True)
    return None
  scores = train.evaluate_checkpoints(config, run_dir)
  if config.steps not in scores:
    print(f'{name}: the checkpoint of its last step ({config.steps}) is gone: run it again '
          'instead', flush=True)
    return None
  # As a run records them: TensorBoard scalars (float32), read back by read_curves.
  along = {str(step): {m: [float(np.float32(e[m])) for e in scores[step]] for m in METRICS}
           for step in sorted(scores)}
  per_seed = [{m: e[m] for m in METRICS} for e in scores[config.steps]]
  new = {**stored, 'recipe': recipe(config), 'per_seed': per_seed, 'along_per_seed': along,
         **row_parts.summarize(per_seed, along),
         'rescored': {'changed': changed, 'steps': sorted(scores), 'hardware': hardware()}}
  print(f'{name}: rescored at steps {sorted(scores)}: {_scores(new)} (was {_scores(stored)})',
        flush=True)
  return new


def rescore_row(row: Row, out: str, path: str, rows: list[Row], quick: bool) -> None:
  """`rescore` for `row`'s stored parts and stored result where stale; then assembles the
  row and rewrites the report."""
  with locked(_parts_path(path)) as parts:
    for key, part in parts.items():
      if row_parts.row_of(key) == row.key and stale_fields(part, row, quick):
        parts[key] = rescore(part, row, out, quick) or part
  with locked(path) as results:
    if row.key in results and stale_fields(results[row.key], row, quick):
      new = rescore(results[row.key], row, out, quick)
      if new is not None:
        results[row.key] = _as_row(new, row)
    if take_parts(results, path, row, quick):
      print(f'{row.key}: every member stored: assembled from its parts', flush=True)
    write_report(out, results, rows, quick)


if __name__ == '__main__':
  main()
