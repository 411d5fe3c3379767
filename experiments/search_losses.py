"""Gives every GAN loss the same hyper-parameter search on digits (Lucic et al. 2018).

    .venv/bin/python experiments/search_losses.py            # ~35 minutes on 2 shared CPU cores
    .venv/bin/python experiments/search_losses.py --quick    # smoke test, about a minute

`compare_losses.py` trains every loss with one fixed recipe, which measures how well that
recipe suits each loss. Here every loss variant (`compare_losses.variants()`) is trained at
the same points of a search space (G and D learning rates, Adam β1 and β2, discriminator
updates per generator update), drawn once by a seeded Latin hypercube, for the same number
of generator steps; as in "Are GANs Created Equal?" (Lucic et al. 2018) each loss is
reported by its best and its median point. Members with the same ``n_dis`` train as one
population (``n_dis`` is static in the compiled step; rates and betas are per member), so
a loss costs one run per ``n_dis`` value. The best point of each loss is then re-run with
new seeds (``--reruns``), since the best of several draws is biased low, and for longer
(``--rerun_steps``, 3x the search's steps), to show whether it has stopped improving.

Writes ``<out>/search_losses.md``, ``<out>/search_losses.json`` and PNGs:
``search_fid.png`` (final FID* of every point, per loss), ``search_curves.png`` (FID* over
steps, every point) and ``search_samples.png`` (each loss's best point), by
``experiments/report_search.py``. A rerun reuses
the finished runs in the json, and an interrupted run resumes from its last checkpoint.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare_losses  # pylint: disable=wrong-import-position  (puts the repository on sys.path)
import report_search  # pylint: disable=wrong-import-position
import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ganjax import losses, train  # pylint: disable=wrong-import-position

# (name, kind, range or choices). 'log'/'linear': continuous; 'choice': equal shares.
SPACE = (
    ('g_lr', 'log', (3e-5, 3e-3)),
    ('d_lr', 'log', (3e-5, 3e-3)),
    ('b1', 'linear', (0.0, 0.9)),
    ('b2', 'choice', (0.9, 0.999)),
    ('n_dis', 'choice', (1, 5)),
)
QUICK_SPACE = SPACE[:-1] + (('n_dis', 'choice', (1,)),)  # one population per loss
METRICS = ('fid', 'kid_mean', 'precision', 'recall', 'density', 'coverage', 'ema_fid')
QUICK_LOSSES = ('classic (non-saturating)', 'wgan-gp')
RERUN_SEED = 1000  # the re-runs of the best point use seeds 1000, 1001, ...


def sample_points(n, seed, space=SPACE):
  """`n` points of `space`, a Latin hypercube: each continuous range cut into n equal strata
  (on a log scale for 'log'), one point per stratum; each choice taken by n/k points.
  Sorted by n_dis, so each population's members (and seeds) are consecutive."""
  rng = np.random.default_rng(seed)
  columns = {}
  for name, kind, values in space:
    strata = rng.permutation(n)
    if kind == 'choice':
      columns[name] = [values[s * len(values) // n] for s in strata]
      continue
    u = (strata + rng.uniform(size=n)) / n
    lo, hi = values
    if kind == 'log':
      x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
      columns[name] = [float(f'{v:.2g}') for v in x]
    else:
      columns[name] = [round(float(v), 2) for v in lo + u * (hi - lo)]
  points = [{name: columns[name][i] for name, _, _ in space} for i in range(n)]
  points.sort(key=lambda p: p['n_dis'])  # stable: within a group, the order drawn
  return [dict(p, point=i, seed=i) for i, p in enumerate(points)]


def groups_of(points):
  """n_dis -> the points that train together (one population)."""
  out = {}
  for p in points:
    out.setdefault(p['n_dis'], []).append(p)
  return out


def tag(obj):
  return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def make_config(args, loss, options, points, steps, evals):
  """One population: the points' rates and betas per member, seeds seed..seed+n-1."""
  n_dis = {p['n_dis'] for p in points}
  assert len(n_dis) == 1, n_dis
  config = compare_losses.make_config('digits', loss, options, steps, len(points), evals,
                                      args.quick)
  every = config.eval_every
  per = lambda name: tuple(p[name] for p in points)
  config.update_from_flattened_dict({
      'seed': points[0]['seed'], 'n_dis': n_dis.pop(), 'checkpoint_every': every,
      'g_optimizer.learning_rate': per('g_lr'), 'd_optimizer.learning_rate': per('d_lr'),
      'g_optimizer.b1': per('b1'), 'd_optimizer.b1': per('b1'),
      'g_optimizer.b2': per('b2'), 'd_optimizer.b2': per('b2'),
      # A diverging member skips its non-finite updates (counted) instead of stopping the
      # population; it then scores badly, which is its result.
      'skip_nonfinite': True})
  if args.data_dir:
    config.data_dir = args.data_dir
  return config


def train_group(args, variant, loss, options, name, points, steps, evals):
  """Trains one population (resuming its workdir) and returns its json entry."""
  workdir = os.path.join(args.out, 'runs', 'search', re.sub(r'[^a-z0-9]+', '_', variant).strip('_'),
                         f'{name}_{steps}steps_{tag(points)}')
  config = make_config(args, loss, options, points, steps, evals)
  start = time.time()
  summary = train.train_and_evaluate(config, workdir)
  if summary['preempted']:
    print(f'Preempted during {variant} / {name}; rerun the same command to resume.')
    sys.exit(0)
  curves = compare_losses.read_curves(workdir, len(points), 'fid')
  suffix = lambda i: f'_member{i}' if len(points) > 1 else ''
  return {'points': points, 'steps': steps, 'wall_time_s': time.time() - start,
          'members': summary['members'],
          # keyed by seed: unique within a population (a re-run repeats one point)
          'curves': {str(p['seed']): curves.get(i, []) for i, p in enumerate(points)},
          'samples': {str(p['seed']): os.path.relpath(  # relative to --out
              os.path.join(workdir, 'samples', f'step_{steps}{suffix(i)}.png'), args.out)
                      for i, p in enumerate(points)}}


def score(member):
  """Final FID*, non-finite (a diverged member) counted as worst."""
  value = member.get('fid', float('nan'))
  return value if math.isfinite(value) else float('inf')


def search_members(entry):
  """The loss's search members, flat: each point's hyper-parameters and final metrics."""
  out = []
  for name, run in entry['runs'].items():
    if name == 'rerun':
      continue
    for p, m in zip(run['points'], run['members']):
      out.append(dict(p, **{k: m.get(k, float('nan')) for k in METRICS},
                      skipped_steps=m['skipped_steps'], curve=run['curves'][str(p['seed'])],
                      samples=run['samples'][str(p['seed'])]))
  return sorted(out, key=lambda m: m['point'])


def best_point(entry):
  members = search_members(entry)
  return min(members, key=score) if members else None


def run(args):
  """Trains what the json lacks (a rerun picks up after an interruption), then reports."""
  os.makedirs(args.out, exist_ok=True)
  # Runs share compiled programs where their HLO is equal (the initialisation of every
  # population of one size, the samplers, the metrics; everything on a resume): ~20 s each.
  # A cache the user has set (JAX_COMPILATION_CACHE_DIR) is used as it is.
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.path.join(args.out, 'runs', 'jax_cache'))
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
  path = os.path.join(args.out, 'search_losses.json')
  results = {}
  if os.path.exists(path):
    with open(path) as f:
      results = json.load(f)
  space = QUICK_SPACE if args.quick else SPACE
  points = sample_points(args.members, args.space_seed, space)
  setting = {'steps': args.steps, 'evals': args.evals, 'members': args.members,
             'space_seed': args.space_seed, 'quick': args.quick,
             'space': [list(s) for s in space], 'points': points}
  if {k: results.get(k) for k in setting} != json.loads(json.dumps(setting)):
    results = {}  # another search: nothing to reuse (its runs stay in their own workdirs)
  results.update(setting)
  by_loss = results.setdefault('losses', {})
  all_variants = compare_losses.variants(args.losses)
  if args.quick and not args.losses:
    all_variants = {k: v for k, v in all_variants.items() if k in QUICK_LOSSES}
  groups = groups_of(points)
  todo = len(all_variants) * (len(groups) + (args.reruns > 0))
  done, t0 = 0, time.time()

  def save():
    with open(path, 'w') as f:  # after every run: nothing lost on interruption
      json.dump(results, f, indent=1)

  def progress(label):
    elapsed = time.time() - t0
    print(f'[{datetime.datetime.now():%H:%M:%S}] ({done + 1}/{todo}) {label}; '
          f'{elapsed / 60:.1f} min so far', flush=True)

  # Phase 1: the search, every loss at every point. Phase 2: each loss's best point again.
  for variant, (loss, options) in all_variants.items():
    entry = by_loss.setdefault(variant, {'loss': loss, 'options': options, 'runs': {}})
    for n_dis, members in groups.items():
      name = f'ndis{n_dis}'
      if name in entry['runs']:
        print(f'{variant} / {name}: already in {path}', flush=True)
        done += 1
        continue
      progress(f'{variant} / {name}: {len(members)} members x {args.steps} steps')
      entry['runs'][name] = train_group(args, variant, loss, options, name, members,
                                        args.steps, args.evals)
      fids = [m.get('fid', float('nan')) for m in entry['runs'][name]['members']]
      print(f'    done in {entry["runs"][name]["wall_time_s"]:.0f} s; final FID* '
            + ', '.join(f'{v:.0f}' for v in fids), flush=True)
      done += 1
      save()
  if args.reruns > 0:
    for variant, (loss, options) in all_variants.items():
      entry = by_loss[variant]
      best = best_point(entry)
      seeds = [RERUN_SEED + i for i in range(args.reruns)]
      rerun = entry['runs'].get('rerun')
      if (rerun and rerun['points'][0]['point'] == best['point']
          and len(rerun['points']) == len(seeds) and rerun['steps'] == args.rerun_steps):
        print(f'{variant} / rerun: already in {path}', flush=True)
        done += 1
        continue
      point = {k: best[k] for k in ('g_lr', 'd_lr', 'b1', 'b2', 'n_dis', 'point')}
      copies = [dict(point, seed=s) for s in seeds]
      progress(f'{variant} / rerun of point {best["point"]} with seeds {seeds}, '
               f'{args.rerun_steps} steps')
      entry['runs']['rerun'] = train_group(  # evaluated as often as the search
          args, variant, loss, options, 'rerun', copies, args.rerun_steps,
          args.evals * args.rerun_steps // args.steps)
      print(f'    done in {entry["runs"]["rerun"]["wall_time_s"]:.0f} s', flush=True)
      done += 1
      save()
  for entry in by_loss.values():  # the flat view the report reads (also for other readers)
    entry['search'] = search_members(entry)
    best = best_point(entry)
    entry['best_point'] = None if best is None else best['point']
  save()
  fixed = report_search.fixed_recipe(args.out)
  report_search.write_report(args, results, fixed, time.time() - t0)
  report_search.plot_fid(args.out, results, fixed)
  report_search.plot_curves(args.out, results)
  report_search.plot_samples(args.out, results)
  print(f'Wrote {os.path.join(args.out, "search_losses.md")} and plots.')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true',
                      help='2 losses x 2 points x a few steps, small models (smoke test)')
  parser.add_argument('--members', type=int, default=None,
                      help='search points per loss (8; quick: 2)')
  parser.add_argument('--steps', type=int, default=None, help='generator steps (1000; quick: 10)')
  parser.add_argument('--evals', type=int, default=None, help='evaluations per run (5; quick: 2)')
  parser.add_argument('--reruns', type=int, default=None,
                      help='new seeds for each loss\'s best point (2; quick: 0); 0: none')
  parser.add_argument('--rerun_steps', type=int, default=None,
                      help='generator steps of the re-runs (3 x --steps): has the best point '
                      'stopped improving?')
  parser.add_argument('--space_seed', type=int, default=0, help='seed of the search points')
  parser.add_argument('--losses', nargs='+', default=None,
                      help='registered losses to search (default: all, with their variants)')
  parser.add_argument('--data_dir', default='', help='TFDS data dir for digits')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args(argv)
  for name in args.losses or ():
    if name not in losses.names():
      parser.error(f'--losses: unknown loss {name!r}; valid: {", ".join(losses.names())}.')
  defaults = dict(members=(2, 8), steps=(10, 1000), evals=(2, 5), reruns=(0, 2))
  for field, (quick, full) in defaults.items():
    if getattr(args, field) is None:
      setattr(args, field, quick if args.quick else full)
  if args.members < 1 or args.steps < 1 or args.evals < 1 or args.reruns < 0:
    parser.error('--members, --steps and --evals must be positive, --reruns >= 0.')
  if args.steps % args.evals:
    parser.error(f'--evals={args.evals} must divide --steps={args.steps}.')
  if args.rerun_steps is None:
    args.rerun_steps = 3 * args.steps
  if args.rerun_steps % args.steps:
    parser.error(f'--rerun_steps={args.rerun_steps} must be a multiple of --steps={args.steps}.')
  compare_losses.show_progress()
  run(args)


if __name__ == '__main__':
  main()
