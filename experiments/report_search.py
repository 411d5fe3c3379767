"""The report of experiments/search_losses.py: ``search_losses.md`` and its plots
(``search_fid.png``, ``search_curves.png``, ``search_samples.png``), written from
``search_losses.json`` and, where it lies beside it, compare_losses' ``results.json`` (the
one fixed recipe the search is set against)."""

import datetime
import json
import math
import os
import platform
import sys

import compare_losses
import jax
import numpy as np

REPORTED = ('fid', 'kid_mean', 'precision', 'recall')


def fixed_recipe(out):
  """compare_losses' digits results (one fixed recipe), if its results.json is beside ours."""
  path = os.path.join(out, 'results.json')
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    digits = json.load(f).get('digits', {})
  return {v: {'steps': r['steps'], 'fid': [m['fid'] for m in r['members']]}
          for v, r in digits.items()}


def _median(values):
  values = [v if math.isfinite(v) else float('inf') for v in values]
  return float(np.median(values)) if values else float('nan')


def _fmt(metric, value):
  if not math.isfinite(value):
    return 'n/a' if math.isnan(value) else '∞'
  if metric in ('precision', 'recall', 'coverage'):
    return f'{100 * value:.1f}%'
  return f'{value:.3g}'


def _mean_sd(values):
  values = [v for v in values if math.isfinite(v)]
  if len(values) > 1:
    return f'{np.mean(values):.3g} ± {np.std(values, ddof=1):.2g}'
  return f'{values[0]:.3g}' if values else 'n/a'


def _rerun_steps(by_loss):
  return next((e['runs']['rerun']['steps'] for e in by_loss.values() if 'rerun' in e['runs']),
              None)


def _rerun_seeds(by_loss):
  seeds = sorted({p['seed'] for e in by_loss.values() if 'rerun' in e['runs']
                  for p in e['runs']['rerun']['points']})
  return ', '.join(map(str, seeds)) or 'none'


def _hp(p):
  return (f'G {p["g_lr"]:.2g}, D {p["d_lr"]:.2g}, β1 {p["b1"]:.2f}, β2 {p["b2"]:g}, '
          f'n_dis {p["n_dis"]}')


def write_report(args, results, fixed, elapsed):
  by_loss, points = results['losses'], results['points']
  steps = results['steps']
  walls = sum(r['wall_time_s'] for e in by_loss.values() for r in e['runs'].values())
  lines = [
      '# Equal tuning budget per loss (digits)', '',
      f'Generated {datetime.datetime.now():%Y-%m-%d %H:%M} by:', '', '```bash',
      ('cd ganjax && .venv/bin/python experiments/search_losses.py ' + ' '.join(sys.argv[1:])
       ).rstrip(),
      '```', '',
      f'jax {jax.__version__}, {jax.devices()[0].platform} x {jax.device_count()}, Python '
      f'{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores (shared with '
      f'other jobs). Training wall time, all runs: {walls / 60:.0f} min.', '']
  if args.quick:
    lines += ['**Quick mode**: too few steps for the numbers to mean anything.', '']
  lines += [
      '## Protocol', '',
      f'Every loss variant trains at the same {len(points)} points for {steps} generator steps '
      f'(`configs/digits.py`: DCGAN width 32, batch 64, generator EMA 0.999), scored every '
      f'{steps // results["evals"]} steps on 360 generated digits against the 360 held-out ones. '
      'The points are one seeded Latin hypercube over the space below, the same for every loss: '
      'each continuous range is cut into as many strata as points, one point per stratum, and '
      'each choice is taken by equally many points. β1 and β2 are shared by G and D. The '
      'registered defaults of the losses (WGAN-GP: n_dis 5, betas (0.5, 0.9); the others: '
      'n_dis 1, betas (0.5, 0.999); all at rate 2e-4 in `configs/digits.py`) are not among '
      'the points: that one fixed recipe is `compare_losses.md`\'s digits table, quoted as a '
      'reference below. The loss\'s own options stay fixed (WGAN-GP: λ = 10). Members with '
      'the same n_dis train as one population (one compiled step); member seeds are the '
      'point numbers, so every loss sees the same initialisation draw per point. A member whose '
      'update turns non-finite skips it (`skip_nonfinite`) and keeps training.', '',
      '| parameter | range | sampled |', '|---|---|---|']
  for name, kind, values in results['space']:
    rng = ('{' + ', '.join(f'{v:g}' for v in values) + '}' if kind == 'choice'
           else f'[{values[0]:g}, {values[1]:g}]' + (' (log scale)' if kind == 'log' else ''))
    lines.append(f'| {name} | {rng} | ' + ', '.join(f'{p[name]:g}' for p in points) + ' |')

  lines += ['', '## Results', '',
            f'Best point of each loss (lowest final FID* of the search) and the median over its '
            f'{len(points)} points (each metric\'s own median). '
            'FID* and KID are in the feature space of ganjax\'s digits classifier, not '
            'Inception; lower is better; precision and recall higher. '
            '"Re-run" is the best point trained again from new seeds '
            f'({_rerun_seeds(by_loss)}) for {_rerun_steps(by_loss) or "n/a"} steps: '
            'mean ± standard deviation over them, an estimate free of the search\'s selection '
            'bias, and a check that the best point has stopped improving. "Lowest during '
            'training" is each re-run\'s best evaluation: an early stop chosen on the held-out '
            'digits, so optimistic. The fixed recipe\'s numbers are mean FID* over its seeds '
            'at its own length.', '',
            '| loss | best FID* | KID | precision | recall | re-run FID*: final | re-run: lowest '
            'during training | median FID* | KID | precision | recall | one fixed recipe FID* |',
            '|---|' + '---|' * 11]
  summary = {}
  partial = {}
  for variant, e in by_loss.items():
    members = e.get('search', [])
    if len(members) < len(points):
      partial[variant] = len(members)
      continue
    best = next(m for m in members if m['point'] == e['best_point'])
    med = {m: _median([x[m] for x in members]) if m == 'fid'
           else float(np.nanmedian([x[m] for x in members])) for m in REPORTED}
    rerun = e['runs'].get('rerun')
    if not (rerun and rerun['points'][0]['point'] == best['point']):
      rerun = None
    rerun_fids = [x.get('fid', float('nan')) for x in rerun['members']] if rerun else []
    rerun_cell = _mean_sd(rerun_fids) if rerun_fids else 'not run'
    lowest = [min(c, key=lambda sv: sv[1] if math.isfinite(sv[1]) else float('inf'))
              for c in (rerun['curves'].values() if rerun else ()) if c]
    lowest_cell = (_mean_sd([v for _, v in lowest]) + ' (steps '
                   + ', '.join(str(st) for st, _ in lowest) + ')') if lowest else 'not run'
    f = fixed.get(variant)
    fixed_cell = (f'{np.mean(f["fid"]):.3g} ({len(f["fid"])} seeds, {f["steps"]} steps)'
                  if f else 'n/a')
    summary[variant] = dict(best=best, med=med, rerun=rerun_fids, rerun_run=rerun, fixed=f)
    lines.append(f'| {variant} | **{_fmt("fid", best["fid"])}** | '
                 f'{_fmt("kid", best["kid_mean"])} | {_fmt("precision", best["precision"])} | '
                 f'{_fmt("recall", best["recall"])} | {rerun_cell} | {lowest_cell} | '
                 f'{_fmt("fid", med["fid"])} | '
                 f'{_fmt("kid", med["kid_mean"])} | {_fmt("precision", med["precision"])} | '
                 f'{_fmt("recall", med["recall"])} | {fixed_cell} |')
  missing = [v + (f' ({partial[v]} of {len(points)} points done)' if v in partial else '')
             for v in compare_losses.variants() if v not in summary]
  if missing and not args.quick:
    lines += ['', f'**Missing** (not finished when this report was written): {", ".join(missing)}.']

  lines += ['', '### Winning hyper-parameters', '',
            'The best point of each loss: its FID* at every evaluation of the search, and '
            'the re-runs\' (mean ± standard deviation over the new seeds) at multiples of the '
            'search\'s length.', '',
            '| loss | best point | hyper-parameters | search: FID* over steps | re-runs: FID* '
            'over steps |', '|---|---|---|---|---|']
  for variant, s in summary.items():
    curve = ', '.join(f'{st}: {_fmt("fid", v)}' for st, v in s['best']['curve'])
    rerun = s['rerun_run']
    later = 'not run'
    if rerun:
      curves = [dict(c) for c in rerun['curves'].values()]
      later = ', '.join(
          f'{st}: ' + _mean_sd([c[st] for c in curves if st in c])
          for st in range(steps, rerun['steps'] + 1, steps))
    lines.append(f'| {variant} | {s["best"]["point"]} | {_hp(s["best"])} | {curve} | {later} |')

  lines += ['', '### Final FID* of every point', '',
            '| point | hyper-parameters | ' + ' | '.join(summary) + ' |',
            '|---|---|' + '---|' * len(summary)]
  for p in points:
    cells = []
    for variant in summary:
      m = next(x for x in by_loss[variant]['search'] if x['point'] == p['point'])
      cell = _fmt('fid', m['fid'])
      if m['skipped_steps']:
        cell += f' ({m["skipped_steps"]} skipped)'
      cells.append(f'**{cell}**' if m['point'] == summary[variant]['best']['point'] else cell)
    lines.append(f'| {p["point"]} | {_hp(p)} | ' + ' | '.join(cells) + ' |')

  if summary:
    lines += ['', '### In numbers', '']
    bests = {v: s['best']['fid'] for v, s in summary.items()}
    lo, hi = min(bests, key=bests.get), max(bests, key=bests.get)
    lines.append(f'- Best FID* per loss ranges from {bests[lo]:.3g} ({lo}) to {bests[hi]:.3g} '
                 f'({hi}), a factor of {bests[hi] / bests[lo]:.2g}.')
    meds = {v: s['med']['fid'] for v, s in summary.items()}
    lo_m, hi_m = min(meds, key=meds.get), max(meds, key=meds.get)
    lines.append(f'- Median FID* per loss ranges from {meds[lo_m]:.3g} ({lo_m}) to '
                 f'{meds[hi_m]:.3g} ({hi_m}).')
    reruns = {v: s['rerun'] for v, s in summary.items() if len(s['rerun']) > 1}
    if reruns:
      means = {v: float(np.mean(r)) for v, r in reruns.items()}
      top = min(means, key=means.get)
      lines.append(f'- Re-runs of the best points, final FID* after {_rerun_steps(by_loss)} '
                   f'steps: lowest mean {means[top]:.3g} ({top}); '
                   + ', '.join(f'{v} {means[v]:.3g}' for v in means) + '.')
    fixed_means = {v: float(np.mean(s['fixed']['fid'])) for v, s in summary.items()
                   if s['fixed']}
    if fixed_means:
      lo_f, hi_f = min(fixed_means, key=fixed_means.get), max(fixed_means, key=fixed_means.get)
      lines.append(f'- With one fixed recipe (`compare_losses.md`) the same losses ranged from '
                   f'{fixed_means[lo_f]:.3g} ({lo_f}) to {fixed_means[hi_f]:.3g} ({hi_f}), a '
                   f'factor of {fixed_means[hi_f] / fixed_means[lo_f]:.2g}.')
    diverged = sum(m['skipped_steps'] > 0 for s in by_loss.values() for m in s['search'])
    lines.append(f'- Members that skipped non-finite updates: {diverged} of '
                 f'{sum(len(s["search"]) for s in by_loss.values())}.')
  acc = next((m.get('feature_accuracy') for e in by_loss.values()
              for r in e['runs'].values() for m in r['members'] if 'feature_accuracy' in m),
             None)
  if acc is not None:
    lines += ['', f'Features: ganjax.features classifier trained on the digits training split '
              f'(test accuracy {acc:.3f}).']
  lines += ['', '![FID* of every point](search_fid.png)', '',
            '![FID* over steps](search_curves.png)', '',
            '![best point of each loss](search_samples.png)', '']
  with open(os.path.join(args.out, 'search_losses.md'), 'w') as f:
    f.write('\n'.join(lines))


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


NDIS_COLOURS = {1: 'tab:blue', 2: 'tab:green', 5: 'tab:orange'}


def plot_fid(out, results, fixed):
  """Final FID* of every point per loss (a strip over a box), the fixed recipe beside it."""
  plt = _pyplot()
  by_loss = {v: e['search'] for v, e in results['losses'].items() if e.get('search')}
  fig, ax = plt.subplots(figsize=(1.6 * len(by_loss) + 2, 4.2))
  rng = np.random.default_rng(0)
  finite = [m['fid'] for ms in by_loss.values() for m in ms if math.isfinite(m['fid'])]
  cap = max(finite) * 1.5 if finite else 1.0
  ax.boxplot([[min(m['fid'], cap) if math.isfinite(m['fid']) else cap for m in ms]
              for ms in by_loss.values()], widths=0.5, showfliers=False)
  seen = set()
  for x, (variant, ms) in enumerate(by_loss.items(), start=1):
    for m in ms:
      y = m['fid'] if math.isfinite(m['fid']) else cap
      label = f'n_dis {m["n_dis"]}' if m['n_dis'] not in seen else None
      seen.add(m['n_dis'])
      ax.scatter(x + rng.uniform(-0.15, 0.15), y, s=22, zorder=3, label=label,
                 color=NDIS_COLOURS.get(m['n_dis'], 'tab:gray'),
                 marker='o' if math.isfinite(m['fid']) else 'x')
    f = fixed.get(variant)
    if f:
      ax.scatter([x + 0.32] * len(f['fid']), f['fid'], marker='_', s=120, color='tab:red',
                 zorder=3, label=(f'one fixed recipe (compare_losses, {f["steps"]} steps)'
                                  if x == 1 else None))
  ax.set_xticks(range(1, len(by_loss) + 1))
  ax.set_xticklabels([v.replace(' (', '\n(') for v in by_loss], fontsize=8)
  ax.set_yscale('log')
  ax.set_ylabel('final FID* (log scale)')
  ax.set_title(f'digits: final FID* of each of the {len(results["points"])} search points, '
               f'{results["steps"]} steps', fontsize=10)
  ax.legend(fontsize=7)
  fig.savefig(os.path.join(out, 'search_fid.png'), bbox_inches='tight', dpi=110)
  plt.close(fig)


def plot_curves(out, results):
  """FID* over steps of every point, one panel per loss; the best point thick."""
  plt = _pyplot()
  by_loss = {v: e for v, e in results['losses'].items() if e.get('search')}
  cols = min(3, len(by_loss)) or 1
  rows = math.ceil(len(by_loss) / cols) or 1
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False,
                           sharey=True)
  for ax, (variant, e) in zip(axes.flat, by_loss.items()):
    for m in e['search']:
      if not m['curve']:
        continue
      steps, values = zip(*m['curve'])
      best = m['point'] == e['best_point']
      ax.plot(steps, values, color=NDIS_COLOURS.get(m['n_dis'], 'tab:gray'),
              lw=2.2 if best else 0.8, alpha=1.0 if best else 0.6,
              label=f'best: point {m["point"]}' if best else None)
    rerun = e['runs'].get('rerun')
    if rerun and rerun['points'][0]['point'] == e['best_point']:
      for i, c in enumerate(rerun['curves'].values()):
        if c:
          s, v = zip(*c)
          ax.plot(s, v, color='black', lw=1.0, ls='--',
                  label='best point, new seeds' if i == 0 else None)
    ax.set_yscale('log')
    ax.set_title(variant, fontsize=9)
    ax.set_xlabel('generator step', fontsize=8)
    ax.legend(fontsize=7)
  for ax in axes.flat[len(by_loss):]:
    ax.axis('off')
  for ax in axes[:, 0]:
    ax.set_ylabel('FID* (log scale)')
  colours = ', '.join(f'{NDIS_COLOURS.get(n, "tab:gray")[4:]}: n_dis {n}'
                      for n in sorted({p['n_dis'] for p in results['points']}))
  fig.suptitle(f'digits: FID* over training, every search point ({colours}; thick: the best '
               'point)', fontsize=10)
  fig.tight_layout()
  fig.savefig(os.path.join(out, 'search_curves.png'), bbox_inches='tight', dpi=110)
  plt.close(fig)


def plot_samples(out, results):
  plt = _pyplot()
  by_loss = {v: e for v, e in results['losses'].items() if e.get('search')}
  fig, axes = plt.subplots(1, len(by_loss) or 1, figsize=(3 * len(by_loss), 3.4), squeeze=False)
  for ax, (variant, e) in zip(axes[0], by_loss.items()):
    best = next(m for m in e['search'] if m['point'] == e['best_point'])
    path = os.path.join(out, best['samples'])
    if os.path.exists(path):
      ax.imshow(plt.imread(path), cmap='gray')
    ax.set_title(f'{variant}\npoint {best["point"]}, FID* {_fmt("fid", best["fid"])}', fontsize=8)
    ax.axis('off')
  fig.suptitle('digits: final samples of each loss\'s best point', fontsize=10)
  fig.savefig(os.path.join(out, 'search_samples.png'), bbox_inches='tight', dpi=110)
  plt.close(fig)
