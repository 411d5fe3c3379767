"""Markdown tables and target checks for `benchmarks.bench` records."""

from __future__ import annotations

import json

TARGETS = {'torch_ratio': {'dcgan32': 0.7, 'mlp': 0.5}, 'real_input_overhead': 0.05}


def _key(r: dict) -> tuple:
  return (r.get('model'), r.get('loss', 'classic'), r.get('devices', 1), r.get('population', 1),
          r.get('steps_per_call', 1))


def _steps(records: list[dict]) -> dict:
  """(model, loss, devices, population, steps_per_call) -> the first measured step record."""
  out = {}
  for r in records:
    if r.get('kind') == 'step' and 'step_ms' in r:
      out.setdefault(_key(r), r)
  return out


def targets(records: list[dict]) -> list[dict]:
  """One record per target: the value, the limit, whether it is met, from what."""
  out = []

  def add(name, value, limit, detail, met=None):
    out.append(dict(kind='target', name=name, value=value, limit=limit, detail=detail,
                    met=met if value is None else value <= limit if met is None else met))

  compares = {r['model']: r for r in records if r.get('kind') == 'compare' and 'ratio' in r}
  for model, limit in TARGETS['torch_ratio'].items():
    r = compares.get(model)
    add(f'{model} step: ganjax / PyTorch', r and r['ratio'], limit,
        f'{r["ganjax_ms"]:.1f} ms / {r["torch_ms"]:.1f} ms' if r else 'not measured')
  steps = _steps(records)
  for (model, loss, devices, pop, k), r in steps.items():
    base = steps.get((model, loss, devices, 1, k))
    if pop > 1 and base:
      add(f'{model} population {pop}: cost / one member ({loss}, {devices} dev)',
          round(r['step_ms'] / base['step_ms'], 3), pop,
          f'{r["step_ms"]:.1f} ms / {base["step_ms"]:.1f} ms')
  for r in records:
    if r.get('kind') == 'real_vs_synthetic' and 'overhead' in r:
      k = r.get('steps_per_call', 1)
      add(f'{r["dataset"]} real input: throughput lost vs synthetic'
          + (f' ({k} steps per call)' if k > 1 else ''), r['overhead'],
          TARGETS['real_input_overhead'], f'{r["real_steps_per_s"]:.2f} vs '
          f'{r["synthetic_steps_per_s"]:.2f} steps/s')
    if r.get('kind') == 'checkpoint' and 'blocks_steps' in r:
      add(f'{r["model"]} async save(): blocking / one step', r['blocks_steps'], 1.0,
          f'{r["save_call_ms"]:.1f} ms / {r["step_ms"]:.1f} ms',
          met=r['blocks_steps'] < 1.0)
  return out


def one_line(r: dict) -> str:
  """A short progress line for a record."""
  head = ' '.join(f'{k}={r[k]}' for k in ('kind', 'model', 'dataset', 'loss', 'population',
                                          'devices', 'mode') if k in r)
  for k in ('skipped', 'error', 'step_ms', 'ratio', 'ms_per_batch', 'overhead',
            'blocks_steps', 'wall_s'):
    if k in r:
      return f'{head} {k}={r[k]}'
  return head


def _table(header: list[str], rows: list[list]) -> str:
  if not rows:
    return '(none)\n'
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(str(x) for x in row) + ' |' for row in rows]
  return '\n'.join(lines) + '\n'


def _f(x, digits=1) -> str:
  return '' if x is None else f'{x:,.{digits}f}'


def markdown(records: list[dict]) -> str:
  """The report: environment, one table per kind of measurement, skipped cases, targets."""
  env = next((r for r in records if r.get('kind') == 'env'), {})
  total = next((r for r in records if r.get('kind') == 'total'), {})
  by = lambda kind: [r for r in records if r.get('kind') == kind and 'skipped' not in r
                     and 'error' not in r]
  steps = _steps(records)
  kind = next((r['device_kind'] for r in records if r.get('device_kind')), None)
  parts = [f'# ganjax benchmark ({env.get("mode")}, {env.get("platform", "cpu")})\n',
           f'`{env.get("command")}` on {env.get("date")}: {env.get("cpu_count")} CPUs '
           f'({env.get("machine")}), JAX devices: {kind}, jax {env.get("jax")}, flax {env.get("flax")}, '
           f'torch {env.get("torch")}, XLA_FLAGS `{env.get("xla_flags") or ""}`; '
           f'{total.get("wall_s")} s in all; 1-minute load average {env.get("load_avg_1m")} at '
           f'the start, {total.get("load_avg_1m")} at the end (each record has its own).\n',
           'Times are per generator step (WGAN: 5 discriminator updates + 1 generator '
           'update); medians over the steps timed. Peak RSS is the worker process\'s '
           'ru_maxrss after the case (one worker per group of cases).\n',
           '## Train step (synthetic input)\n']
  rows = []
  for r in by('step'):
    base = steps.get(_key(dict(r, population=1)))
    g = lambda k, digits=None: (r.get(k, '') if digits is None else _f(r.get(k), digits))
    rows.append([g('model'), g('loss'), g('penalty'), g('n_dis'), g('population'),
                 r.get('steps_per_call', 1), g('devices'), g('batch_size'), g('compile_s', 1), g('step_ms', 2),
                 f'{g("step_ms_min", 2)}–{g("step_ms_max", 2)}', g('steps'),
                 _f(r['step_ms'] / r.get('population', 1), 2),
                 _f(r['step_ms'] / base['step_ms'], 2) if base else '',
                 g('peak_rss_mb', 0)])
  parts.append(_table(['model', 'loss', 'penalty', 'n_dis', 'pop', 'steps/call', 'devices',
                       'batch',
                       'compile s', 'step ms', 'min–max ms', 'steps', 'ms/member',
                       'x pop-1', 'peak RSS MB'], rows))
  parts.append('\n## ganjax vs PyTorch eager (interleaved in one process)\n')
  parts.append(_table(
      ['model', 'batch', 'ganjax ms', 'PyTorch ms', 'ratio', 'per-rep ratio', 'reps x steps',
       'torch device (threads)', 'params G / D'],
      [[r['model'], r['batch_size'], _f(r['ganjax_ms'], 2), _f(r['torch_ms'], 2),
        _f(r['ratio'], 3), f'{_f(r["rep_ratio_min"], 3)}–{_f(r["rep_ratio_max"], 3)}',
        f'{r["reps"]} x {r["steps_per_rep"]}',
        f'{r.get("torch_device", "cpu")} ({r["torch_threads"]})',
        f'{r["params_generator"]:,} / {r["params_discriminator"]:,}']
       for r in by('compare')]))
  rows = []
  for r in by('step'):
    one = steps.get((r['model'], r['loss'], 1, r['population'], r.get('steps_per_call', 1)))
    if r.get('devices', 1) > 1 and one:
      rows.append([r['model'], r['loss'], r['population'], r['devices'], _f(one['step_ms'], 2),
                   _f(r['step_ms'], 2), _f(one['step_ms'] / r['step_ms'], 2)])
  if rows:
    parts.append('\n## Device count (fake CPU devices sharing the same cores)\n')
    parts.append(_table(['model', 'loss', 'pop', 'devices', '1-device ms', 'ms', 'speed-up'],
                        rows))
  parts.append('\n## Input pipeline alone\n')
  parts.append(_table(['dataset', 'mode', 'batch', 'n_dis', 'ms/batch', 'batches/s',
                       'examples/s'],
                      [[r['dataset'], r['mode'], r['batch_size'], r['n_dis'],
                        _f(r['ms_per_batch'], 3), _f(r['batches_per_s']),
                        f'{r["examples_per_s"]:,}'] for r in by('input')]))
  parts.append('\n## Real input (prefetch + shard_batch) vs synthetic, interleaved blocks\n')
  parts.append(_table(['model', 'dataset', 'batch', 'steps/call', 'real steps/s',
                       'synthetic steps/s', 'throughput lost', 'blocks x calls'],
                      [[r['model'], r['dataset'], r['batch_size'], r.get('steps_per_call', 1),
                        _f(r['real_steps_per_s'], 2), _f(r['synthetic_steps_per_s'], 2),
                        f'{100 * r["overhead"]:.1f}%', f'{r["blocks"]} x {r["steps_per_block"]}']
                       for r in by('real_vs_synthetic')]))
  parts.append('\n## Checkpoints (Orbax, async)\n')
  parts.append(_table(['model', 'size MB', 'save+wait ms', 'save() call ms (max)', 'step ms',
                       'step during save ms', 'save() / step'],
                      [[r['model'], _f(r['checkpoint_bytes'] / 2**20, 2),
                        _f(r['save_and_wait_ms']),
                        f'{_f(r["save_call_ms"])} ({_f(r["save_call_ms_max"])})',
                        _f(r['step_ms'], 2), _f(r['step_during_save_ms'], 2),
                        _f(r['blocks_steps'], 3)] for r in by('checkpoint')]))
  bad = [r for r in records if 'skipped' in r or 'error' in r]
  parts.append('\n## Skipped or failed\n')
  parts.append(_table(['case', 'devices', 'why'],
                      [[json.dumps({k: v for k, v in r.items()
                                    if k not in ('skipped', 'error', 'devices')}),
                        r.get('devices'), r.get('skipped') or r.get('error')] for r in bad]))
  parts.append('\n## Targets\n')
  parts.append(_table(['target', 'value', 'limit', 'met', 'from'],
                      [[r['name'], '' if r['value'] is None else r['value'], r['limit'],
                        {True: 'yes', False: '**no**', None: 'not measured'}[r['met']],
                        r['detail']] for r in records if r.get('kind') == 'target']))
  return '\n'.join(parts)
