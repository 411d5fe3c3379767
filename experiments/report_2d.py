"""The report of experiments/reproduce_2d.py: verdicts, the tables (reproduction, beyond,
probes) and the section on the PyTorch port of recipe B, written from the stored results.
"""

from __future__ import annotations

import datetime
import json
import math
import os

import numpy as np
from scipy import stats

from experiments import row_parts
from experiments.compare_losses import mean_se
from experiments.rows_2d import Row, make_config, stale_fields
from ganjax import workdir


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


def plus_minus(mean_se_pair, digits=1):
  mean, se = mean_se_pair
  if se is None:
    return f'{mean:.{digits}f}'
  return f'{mean:.{digits}f} ± {se:.{digits}f}' if math.isfinite(se) else f'{mean:.{digits}f}'


def _device(result: dict) -> str:
  """'NVIDIA H200' or 'cpu' from a row's hardware string (a row run in parts on several
  machines: 'cpu + NVIDIA H200')."""
  devices = [h.split(' x ')[0] for h in row_parts.devices(result['hardware'])]
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
  return f'. All {len(runs)} seeds: {plus_minus(modes)} modes, {plus_minus(hq)}% HQ'


def section(row: Row) -> str:
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
  parts, shown = row_parts.load(os.path.join(out, row_parts.PARTS_FILE)), [*results.values()]
  for table, header in _SECTIONS.items():
    chosen = [r for r in rows if section(r) == table]
    lines += header
    for row in chosen:
      r = results.get(row.key)
      changed = stale_fields(r, row, quick) if r is not None else {}
      so_far = row_parts.progress([p for k, p in parts.items() if row_parts.row_of(k) == row.key
                                   and not stale_fields(p, row, quick)])
      if (r is None or changed) and so_far and table == 'reproduction':
        lines.append(_in_progress(row, so_far, make_config(row, quick).population))
        shown.append(so_far)
        continue
      if r is None or changed:  # the published numbers, and what the row would cost
        stale = f'stale, to rerun: {workdir.describe(changed)}' if changed else ''
        steps = make_config(row, quick).steps
        if table == 'reproduction':
          cells = [row.table, row.row, row.dataset, plus_minus(row.published['modes']), 'not run',
                   plus_minus(row.published['hq']), 'not run', '', stale or row.note,
                   f'{steps:,}, {row.seeds}', '']
        elif table == 'beyond':
          cells = [row.row, row.dataset, 'not run', stale or row.note, '', f'{steps:,}', '']
        else:
          cells = [row.row, row.dataset, row.note, stale or 'not run', '', '',
                   f'{steps:,}, {row.seeds}', '']
        lines.append('| ' + ' | '.join(cells) + ' |')
        continue
      along = _along(r['along_training'], r['steps'], hq=False)
      along_hq = _along(r['along_training'], r['steps'])
      ours = [plus_minus(r['ganjax']['modes']), plus_minus(r['ganjax']['hq']),
              plus_minus(r['ganjax']['reverse_kl'], 2), f'{r["steps"]:,}, {_device(r)}']
      if table == 'reproduction':
        p = r.get('published', {})
        cells = [r['table'], r['row'], r['dataset'], plus_minus(p['modes']),
                 plus_minus(r['ganjax']['modes']),
                 plus_minus(p['hq']), plus_minus(r['ganjax']['hq']),
                 f'{r["z"]["modes"]}, {r["z"]["hq"]}', r['verdict'] + (
                     f' ({row.note})' if row.note else '')  # today's note: causes found later
                 + _rescored(r),
                 f'{r["steps"]:,}, {r["seeds"]}, {_device(r)}', along_hq]
      elif table == 'beyond':
        cells = [r['row'], r['dataset']] + ours + [along]
      else:
        change = row.note + pooled(r, results.get(row.of))
        cells = [r['row'], r['dataset'], change] + ours[:3] + [
            f'{r["steps"]:,}, {r["seeds"]}, {_device(r)}', along_hq]
      lines.append('| ' + ' | '.join(cells) + ' |')
  lines += _torch_check(out, results, rows)
  hardware = {h for r in shown for h in row_parts.devices(r['hardware'])}
  if hardware:
    lines += ['', 'Hardware: ' + '; '.join(sorted(hardware)) + '.']
  with open(os.path.join(out, 'reproduce_2d.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')


def _in_progress(row: Row, so_far: dict, seeds: int) -> str:
  """A reproduction row some of whose seeds have run (stored parts): what they give, and no
  verdict, which waits for all `seeds`."""
  n, ours = so_far['seeds'], so_far['ganjax']
  along_hq = _along(so_far['along_training'], so_far['steps'])
  members = _ranges(p['members'] for p in so_far['parts'])
  cells = [row.table, row.row, row.dataset, plus_minus(row.published['modes']),
           f'{plus_minus(ours["modes"])} ({n} of {seeds} seeds)',
           plus_minus(row.published['hq']), f'{plus_minus(ours["hq"])} ({n} of {seeds})',
           '', f'in progress: {n} of {seeds} seeds have run (members {members}); no '
           'verdict before all have' + _rescored(so_far),
           f'{so_far["steps"]:,}, {n} of {seeds}, {_device(so_far)}', along_hq]
  return '| ' + ' | '.join(cells) + ' |'


def _along(along: dict, steps: int, hq: bool = True) -> str:
  """The along-training cell: mean modes (and HQ %) at each evaluation, ``a / b / c / d``
  at 25/50/75/100% of `steps` (the column's heading), else prefixed with where they are."""
  text = ' / '.join(f'{v["modes"][0]:.1f}' + (f' ({v["hq"][0]:.0f})' if hq else '')
                    for v in along.values())
  at = [round(100 * int(step) / steps) for step in along]
  return text if at == [25, 50, 75, 100] else f'at {"/".join(map(str, at))}%: {text}'


def _ranges(member_ranges) -> str:
  """``'0-1, 3'`` for parts of members [0, 2) and [3, 4)."""
  return ', '.join(f'{a}-{b - 1}' if b - a > 1 else f'{a}' for a, b in member_ranges)


def _rescored(r: dict) -> str:
  """Which of a row's seeds were scored again from their kept checkpoints after a scoring
  fix (`reproduce_2d.py --rescore`), for its status cell; '' where none were."""
  parts = [p['members'] for p in r.get('parts', ()) if 'rescored' in p]
  if not parts and 'rescored' not in r:
    return ''
  which = f'members {_ranges(parts)}' if parts else 'all seeds'
  return (f'. {which.capitalize()} scored again from their kept checkpoints after a scoring '
          'fix; along training only at the steps all seeds kept '
          '(experiments/reproduce_2d_causes.md)')


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
        lines.append(f'| {row} | {dataset} | {order} | {plus_minus(t["summary"]["modes"])} | '
                     f'{plus_minus(t["summary"]["hq"])} | {t["seeds"]}, {t["steps"]:,} | ' + (
                         f'{plus_minus(mean_se([s["modes"] for s in ours]))} | '
                         f'{plus_minus(mean_se(hq))} '
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
