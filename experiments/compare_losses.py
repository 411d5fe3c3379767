"""Compares every GAN objective on ring, grid and digits, several seeds each.

    .venv/bin/python experiments/compare_losses.py            # full run, ~50 minutes on 2 CPU cores
    .venv/bin/python experiments/compare_losses.py --quick    # smoke test, a few minutes

The seeds of one loss train as one population (one compiled program). Writes
``<out>/compare_losses.md`` (mean ± standard error over seeds, wall time per
run, commands, versions, published numbers for the 2D protocol), ``<out>/
results.json``, and PNGs: ``samples_<dataset>.png`` (each loss's samples side
by side) and ``curves_<dataset>.png`` (metrics over training steps, bands of
± one standard error over seeds).
"""

import argparse
import datetime
import importlib
import json
import math
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ganjax import losses, train  # pylint: disable=wrong-import-position


def variants(names=None):
  """label -> (loss, loss_options): every row of every registered loss (`Loss.experiment_rows`),
  or of the losses `names` only."""
  return {label: (loss.name, options)
          for loss in map(losses.get, names or losses.names())
          for label, options in loss.experiment_rows()}


DATASETS = ('ring', 'grid', 'digits')
# Per dataset: steps and seeds of the full and the quick run, and the metrics reported.
PLAN = {
    'ring': dict(steps=5000, quick_steps=40, metrics=('modes', 'hq_fraction', 'reverse_kl',
                                                      'mode_distance')),
    'grid': dict(steps=3000, quick_steps=40, metrics=('modes', 'hq_fraction', 'reverse_kl',
                                                       'mode_distance')),
    'digits': dict(steps=1500, quick_steps=20, metrics=('fid', 'kid_mean', 'precision',
                                                        'recall', 'density', 'coverage',
                                                        'classifier_score')),
}
CURVE_METRIC = {'ring': 'modes', 'grid': 'modes', 'digits': 'fid'}
# PacGAN (Lin et al. 2018), Table 1, same protocol (2,500 samples, hq = within 3 std).
PUBLISHED = {
    'ring': [('GAN (PacGAN 2018, Table 1)', '6.3 ± 0.5', '98.2%')],
    'grid': [('GAN (PacGAN 2018, Table 1)', '17.3 ± 0.8', '94.8%'),
             ('PacGAN4 (PacGAN 2018, Table 1)', '24.8 ± 0.2', '93.6%')],
}


# VEEGAN (Srivastava et al. 2017), Table 1, has GAN, ALI, Unrolled GAN and VEEGAN on the same
# protocol, but its table is published only as an image, which could not be read where this was
# written; quoting numbers from memory would not be a source, so the report points to it instead.
VEEGAN_NOTE = ('VEEGAN (Srivastava et al. 2017, arXiv:1705.07761), Table 1, reports GAN, ALI, '
               'Unrolled GAN and VEEGAN under the same protocol (2,500 samples, high quality = '
               'within 3 std of the nearest mode, mean of five runs). Its values are not copied '
               'here: the table is an image (arXiv PDF; '
               'https://github.com/akashgit/VEEGAN/blob/master/tab.png) that could not be read '
               'offline, and unchecked numbers are not a reference.')


def make_config(dataset, loss, options, steps, seeds, evals, quick=False):
  config = importlib.import_module(f'configs.{dataset}').get_config()
  every = max(1, steps // evals)
  fields = {'loss': loss, 'steps': steps, 'population': seeds, 'eval_every': every,
            'log_every': every, 'checkpoint_every': steps}
  fields.update({f'loss_options.{k}': v for k, v in options.items()})
  if dataset == 'digits':  # the held-out split has 360 digits
    fields.update({'eval_samples': 360, 'kid_subset_size': 100})
  if quick:  # small models compile fast: this mode only checks that everything runs
    fields.update({'model_options.width': 8, 'feature_steps': 100, 'kid_subsets': 10}
                  if dataset == 'digits' else {'model_options.hidden': (32, 32)})
  config.update_from_flattened_dict(fields)
  return config


def read_curves(workdir, population, metric):
  """{member: [(step, value)]} of eval/<member>/<metric> from the TensorBoard events."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  acc = event_accumulator.EventAccumulator(workdir, size_guidance={'scalars': 0})
  acc.Reload()
  curves = {}
  for i in range(population):
    tag = f'eval/member{i}/{metric}' if population > 1 else f'eval/{metric}'
    if tag in acc.Tags()['scalars']:
      curves[i] = [(e.step, e.value) for e in acc.Scalars(tag)]
  return curves


def show_progress() -> None:
  """Shows the train loop's progress lines (steps/s, ETA), not every library's INFO."""
  logging.set_verbosity(logging.INFO)
  logging.get_absl_logger().addFilter(
      lambda r: r.levelno >= 30 or f'{os.sep}ganjax{os.sep}' in r.pathname)  # 30: WARNING


def mean_se(values):
  values = np.asarray(values, np.float64)
  se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float('nan')
  return float(values.mean()), float(se)


def fmt(metric, mean, se):
  if metric in ('hq_fraction', 'precision', 'recall', 'coverage'):
    return f'{100 * mean:.1f}% ± {100 * se:.1f}'
  if metric == 'modes':
    return f'{mean:.1f} ± {se:.1f}'
  return f'{mean:.3g} ± {se:.2g}'


def run(args):
  """Trains what results.json lacks (a rerun picks up after an interruption), then reports."""
  os.makedirs(args.out, exist_ok=True)
  results_path = os.path.join(args.out, 'results.json')
  results = {}
  if os.path.exists(results_path):
    with open(results_path) as f:
      results = json.load(f)
  for dataset in args.datasets:
    plan = PLAN[dataset]
    steps = plan['quick_steps'] if args.quick else plan['steps']
    for variant, (loss, options) in variants(args.losses).items():
      done = results.get(dataset, {}).get(variant)
      if done and done['steps'] == steps and len(done['members']) == args.seeds:
        print(f'{dataset} / {variant}: already in {results_path}', flush=True)
        continue
      workdir = os.path.join(args.out, 'runs', dataset, variant.replace(' ', '_').strip('()'))
      config = make_config(dataset, loss, options, steps, args.seeds, args.evals, args.quick)
      if args.data_dir:
        config.data_dir = args.data_dir
      print(f'[{datetime.datetime.now():%H:%M:%S}] {dataset} / {variant}: {steps} steps x '
            f'{args.seeds} seeds', flush=True)
      start = time.time()
      summary = train.train_and_evaluate(config, workdir)
      wall = time.time() - start
      if summary['preempted']:  # SIGTERM: the run saved a checkpoint; so does the table
        print(f'Preempted during {dataset} / {variant}; rerun the same command to resume.')
        sys.exit(0)
      results.setdefault(dataset, {})[variant] = {
          'wall_time_s': wall, 'steps': steps, 'members': summary['members'],
          'curves': read_curves(workdir, args.seeds, CURVE_METRIC[dataset]),
          'samples': os.path.join(workdir, 'samples', f'step_{steps}' +
                                  ('_member0' if args.seeds > 1 else '') + '.png')}
      print(f'    done in {wall:.0f} s', flush=True)
      with open(results_path, 'w') as f:  # after every run: nothing lost on interruption
        json.dump(results, f, indent=1)
  results = {d: results[d] for d in DATASETS if d in results}
  write_report(args, results)
  for dataset in results:
    plot_samples(args.out, dataset, results[dataset])
    plot_curves(args.out, dataset, results[dataset])
  print(f'Wrote {os.path.join(args.out, "compare_losses.md")} and plots.')


def write_report(args, results):
  lines = ['# Loss comparison', '',
           f'Generated {datetime.datetime.now():%Y-%m-%d %H:%M} by:', '', '```bash',
           'cd ganjax && .venv/bin/python experiments/compare_losses.py ' +
           ' '.join(sys.argv[1:]), '```', '',
           f'jax {jax.__version__}, {jax.devices()[0].platform} x {jax.device_count()}, '
           f'Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores. '
           f'{args.seeds} seeds per loss (one population, seeds 0..{args.seeds - 1}); mean ± '
           'standard error over seeds; wall time is for all seeds together.', '']
  if args.quick:
    lines += ['**Quick mode**: too few steps for the numbers to mean anything.', '']
  for dataset, by_variant in results.items():
    metrics = PLAN[dataset]['metrics']
    steps = next(iter(by_variant.values()))['steps']
    lines += [f'## {dataset} ({steps} generator steps)', '']
    if dataset == 'digits':
      lines += ['One fixed recipe for every loss (`configs/digits.py`: Adam at 2e-4 for G and D, '
                'β1 0.5, each loss\'s registered n_dis and β2): it measures how well this '
                'recipe suits each loss. With an equal tuning budget per loss instead, see '
                '[search_losses.md](search_losses.md).', '']
    lines += ['| loss | ' + ' | '.join(metrics) + ' | wall time |',
              '|---|' + '---|' * (len(metrics) + 1)]
    for variant, r in by_variant.items():
      cells = [fmt(m, *mean_se([mem[m] for mem in r['members']])) for m in metrics]
      lines.append(f'| {variant} | ' + ' | '.join(cells) + f' | {r["wall_time_s"]:.0f} s |')
    if dataset in PUBLISHED:
      lines += ['', 'Published, same protocol (their networks and training lengths differ):', '',
                '| method | modes | hq_fraction |', '|---|---|---|']
      lines += [f'| {name} | {modes} | {hq} |' for name, modes, hq in PUBLISHED[dataset]]
      lines += ['', VEEGAN_NOTE]
    if dataset == 'digits':
      acc = by_variant[next(iter(by_variant))]['members'][0].get('feature_accuracy')
      lines += ['', f'Features: ganjax.features classifier trained on the digits training split '
                f'(test accuracy {acc:.3f}); real set: the 360 held-out test digits. FID/KID '
                'here are not comparable with Inception-based numbers.']
    lines += ['', f'![samples](samples_{dataset}.png)', '', f'![curves](curves_{dataset}.png)',
              '']
  with open(os.path.join(args.out, 'compare_losses.md'), 'w') as f:
    f.write('\n'.join(lines))


def plot_samples(out, dataset, by_variant):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(by_variant), figsize=(3 * len(by_variant), 3.2),
                           squeeze=False)
  for ax, (variant, r) in zip(axes[0], by_variant.items()):
    if os.path.exists(r['samples']):
      ax.imshow(plt.imread(r['samples']), cmap='gray')
    ax.set_title(variant, fontsize=9)
    ax.axis('off')
  fig.suptitle(f'{dataset}: final samples, seed 0', fontsize=10)
  fig.savefig(os.path.join(out, f'samples_{dataset}.png'), bbox_inches='tight', dpi=110)
  plt.close(fig)


def plot_curves(out, dataset, by_variant):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  metric = CURVE_METRIC[dataset]
  fig, ax = plt.subplots(figsize=(6, 4))
  for variant, r in by_variant.items():
    curves = [c for c in r['curves'].values() if c]
    if not curves:
      continue
    n = min(len(c) for c in curves)
    steps = np.array([s for s, _ in curves[0][:n]])
    values = np.array([[v for _, v in c[:n]] for c in curves])
    mean = values.mean(0)
    se = values.std(0, ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0 * mean
    ax.plot(steps, mean, label=variant)
    ax.fill_between(steps, mean - se, mean + se, alpha=0.2)
  ax.set_xlabel('generator step')
  ax.set_ylabel(metric)
  ax.set_title(f'{dataset}: {metric} (mean ± s.e. over seeds)', fontsize=10)
  ax.legend(fontsize=7)
  fig.savefig(os.path.join(out, f'curves_{dataset}.png'), bbox_inches='tight', dpi=110)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='a few steps per run (smoke test)')
  parser.add_argument('--seeds', type=int, default=None, help='seeds per loss (5; quick: 2)')
  parser.add_argument('--evals', type=int, default=None, help='evaluations per run (10; quick: 2)')
  parser.add_argument('--datasets', nargs='+', default=list(DATASETS), choices=DATASETS)
  parser.add_argument('--losses', nargs='+', default=None,
                      help='registered losses to run (default: all, with their variants)')
  parser.add_argument('--imports', nargs='+', default=[],
                      help='modules to import first, e.g. one that registers a loss')
  parser.add_argument('--data_dir', default='', help='TFDS data dir for digits')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results'))
  args = parser.parse_args(argv)
  show_progress()
  for module in args.imports:
    importlib.import_module(module)
  for name in args.losses or ():
    if name not in losses.names():
      parser.error(f'--losses: unknown loss {name!r}; valid: {", ".join(losses.names())}.')
  if args.seeds is None:
    args.seeds = 2 if args.quick else 5
  if args.evals is None:
    args.evals = 2 if args.quick else 10
  if args.seeds < 1:
    parser.error(f'--seeds={args.seeds}; it must be positive.')
  run(args)


if __name__ == '__main__':
  main()
