"""Markdown tables and target checks for `benchmarks.bench` records.

    python -m benchmarks.report RESULTS.jsonl   # achieved FLOP/s of every case, the targets
"""

from __future__ import annotations

import json
import sys

from benchmarks import flops

# Limits: ratios are met at or below them, speed-ups at or above. Sizes are (model, batch).
TARGETS = {
    'cpu': {'torch_ratio': {('mlp', 512): 0.5, ('dcgan32', 64): 0.7}},
    'accelerator': {
        # ganjax float32 / the fastest PyTorch variant (eager, CUDA graph, torch.compile)
        'torch_ratio': {('dcgan32', 512): 0.8, ('dcgan64', 256): 0.8},
        # ganjax float32 step time / ganjax bfloat16 step time
        'bfloat16_speedup': {('dcgan32', 512): 1.6, ('dcgan64', 256): 1.6},
        # PyTorch's CUDA-graph step / ganjax's per-step time with 100 steps per call
        'steps_per_call_speedup': {('mlp', 512, 100): 3.0},
    },
    'real_input_overhead': 0.05,
}


def _key(r: dict) -> tuple:
  return (r.get('model'), r.get('loss', 'classic'), r.get('devices', 1), r.get('population', 1),
          r.get('steps_per_call', 1), r.get('batch_size'), r.get('dtype', 'float32'))


def _steps(records: list[dict]) -> dict:
  """`_key` -> the first measured step record."""
  out = {}
  for r in records:
    if r.get('kind') == 'step' and 'step_ms' in r:
      out.setdefault(_key(r), r)
  return out


def _platform(records: list[dict]) -> str:
  return next((r.get('platform', 'cpu') for r in records if r.get('kind') == 'env'), 'cpu')


def targets(records: list[dict]) -> list[dict]:
  """One record per target: the value, the limit, whether it is met, from what."""
  out = []

  def add(name, value, limit, detail, at_least=False, met=None):
    if met is None and value is not None:
      met = value >= limit if at_least else value <= limit
    out.append(dict(kind='target', name=name, value=value, limit=limit, at_least=at_least,
                    detail=detail, met=met))

  chip = TARGETS['cpu' if _platform(records) == 'cpu' else 'accelerator']
  compares = {(r['model'], r.get('batch_size')): r for r in records
              if r.get('kind') == 'compare' and 'ratio' in r}
  for (model, batch), limit in chip['torch_ratio'].items():
    r = compares.get((model, batch))
    add(f'{model} b{batch} step: ganjax / fastest PyTorch', r and r['ratio'], limit,
        f'{r["ganjax_ms"]:.3g} ms / {r["torch_ms"]:.3g} ms ({r.get("torch_variant", "eager")})'
        if r else 'not measured')
  steps = _steps(records)
  one = lambda model, batch, dtype='float32', k=1: next(
      (r for key, r in steps.items() if key[0] == model and key[1] == 'classic'
       and key[3:] == (1, k, batch, dtype)), None)
  for (model, batch), limit in chip.get('bfloat16_speedup', {}).items():
    f32, bf16 = one(model, batch), one(model, batch, 'bfloat16')
    ok = f32 and bf16
    add(f'{model} b{batch} bfloat16: speed-up over float32',
        ok and round(f32['step_ms'] / bf16['step_ms'], 3), limit,
        f'{f32["step_ms"]:.3g} ms / {bf16["step_ms"]:.3g} ms' if ok else 'not measured',
        at_least=True)
  for (model, batch, k), limit in chip.get('steps_per_call_speedup', {}).items():
    r, c = one(model, batch, k=k), compares.get((model, batch))
    graph_ms = c and c.get('torch_variants_ms', {}).get('cuda_graph')
    add(f'{model} b{batch}, {k} steps per call: speed-up over PyTorch CUDA graph',
        round(graph_ms / r['step_ms'], 3) if r and graph_ms else None, limit,
        f'{graph_ms:.3g} ms / {r["step_ms"]:.3g} ms' if r and graph_ms else 'not measured',
        at_least=True)
  for key, r in steps.items():
    model, loss, devices, pop = key[:4]
    base = steps.get(key[:3] + (1,) + key[4:])
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


def achieved(r: dict, ms: float | None, platform: str) -> tuple[str, str]:
  """(achieved FLOP/s, share of the chip's dense peak) of a step of `r`'s hand-counted
  ``gflop`` taking `ms`: TFLOP/s and a percentage on accelerators, GFLOP/s on the CPU."""
  gflop = r.get('gflop')
  if not gflop or not ms:
    return '', ''
  tflops = gflop / ms  # GFLOP per ms
  if platform == 'cpu':
    return f'{tflops * 1e3:,.1f}', ''
  peak = flops.peak_tflops(r.get('device_kind'), r.get('dtype', 'float32'))
  return f'{tflops:,.2f}', 'peak unknown' if peak is None else f'{100 * tflops / peak:.1f}%'


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
  platform = env.get('platform', 'cpu')
  rate = ['GFLOP/s'] if platform == 'cpu' else ['TFLOP/s', '% of peak']
  fl = lambda r, ms: list(achieved(r, ms, platform))[:len(rate)]
  parts = [f'# ganjax benchmark ({env.get("mode")}, {env.get("platform", "cpu")})\n',
           f'`{env.get("command")}` on {env.get("date")}: {env.get("cpu_count")} CPUs '
           f'({env.get("machine")}), JAX devices: {kind}, jax {env.get("jax")}, flax {env.get("flax")}, '
           f'torch {env.get("torch")}, XLA_FLAGS `{env.get("xla_flags") or ""}`; '
           f'{total.get("wall_s")} s in all; 1-minute load average {env.get("load_avg_1m")} at '
           f'the start, {total.get("load_avg_1m")} at the end (each record has its own).\n',
           'Times are per generator step (WGAN: 5 discriminator updates + 1 generator '
           'update); medians over the steps timed. Peak RSS is the worker process\'s '
           'ru_maxrss after the case (one worker per group of cases). GFLOP: the step\'s '
           'FLOPs counted by hand (benchmarks/flops.py); achieved FLOP/s = GFLOP / step '
           'time, % of peak: of the chip\'s dense tensor-core peak for the dtype (float32 '
           'as TF32).\n',
           '## Train step (synthetic input)\n']
  rows = []
  for r in by('step'):
    base = steps.get(_key(dict(r, population=1)))
    g = lambda k, digits=None: (r.get(k, '') if digits is None else _f(r.get(k), digits))
    rows.append([g('model'), g('loss'), g('penalty'), g('n_dis'), g('population'),
                 r.get('steps_per_call', 1), g('devices'), g('batch_size'),
                 r.get('dtype', 'float32'), g('compile_s', 1), g('step_ms', 3),
                 f'{g("step_ms_min", 3)}–{g("step_ms_max", 3)}', g('steps'),
                 _f(r['step_ms'] / r.get('population', 1), 3),
                 _f(r['step_ms'] / base['step_ms'], 2) if base else '',
                 r.get('gflop') or r.get('gflop_note', '')] + fl(r, r['step_ms'])
                + [g('peak_rss_mb', 0)])
  parts.append(_table(['model', 'loss', 'penalty', 'n_dis', 'pop', 'steps/call', 'devices',
                       'batch', 'dtype', 'compile s', 'step ms', 'min–max ms', 'steps',
                       'ms/member', 'x pop-1', 'GFLOP'] + rate + ['peak RSS MB'], rows))
  parts.append('\n## ganjax vs PyTorch (interleaved in one process)\n')
  parts.append('PyTorch variants: eager; on a GPU also the step captured as one CUDA graph '
               '(graph) and torch.compile (compile; setup s: compile or capture time). The '
               'ratio is to the fastest variant.\n\n')
  rows = []
  for r in by('compare'):
    ms = r.get('torch_variants_ms', {'eager': r['torch_ms']})
    cell = lambda v: (_f(ms[v], 3) if v in ms else
                      f'skipped: {r["torch_skipped"][v]}' if v in r.get('torch_skipped', {})
                      else '')
    rows.append([r['model'], r['batch_size'], _f(r['ganjax_ms'], 3), cell('eager'),
                 cell('cuda_graph'), cell('compile'), r.get('torch_variant', 'eager'),
                 _f(r['ratio'], 3), f'{_f(r["rep_ratio_min"], 3)}–{_f(r["rep_ratio_max"], 3)}']
                + fl(r, r['ganjax_ms']) + fl(r, r['torch_ms'])[:1]
                + [f'{r["reps"]} x {r["steps_per_rep"]}',
                   ', '.join(f'{v} {t}' for v, t in r.get('torch_setup_s', {}).items()),
                   f'{r.get("torch_device", "cpu")} ({r["torch_threads"]})',
                   f'{r["params_generator"]:,} / {r["params_discriminator"]:,}'])
  parts.append(_table(
      ['model', 'batch', 'ganjax ms', 'eager ms', 'graph ms', 'compile ms', 'fastest',
       'ratio', 'per-rep ratio'] + [f'ganjax {x}' for x in rate]
      + [f'fastest PyTorch {rate[0]}', 'reps x steps', 'setup s', 'torch device (threads)',
         'params G / D'], rows))
  rows = []
  for r in by('step'):
    one = steps.get(_key(dict(r, devices=1)))
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
                       'synthetic steps/s', 'throughput lost', 'blocks x calls']
                      + [f'real {x}' for x in rate],
                      [[r['model'], r['dataset'], r['batch_size'], r.get('steps_per_call', 1),
                        _f(r['real_steps_per_s'], 2), _f(r['synthetic_steps_per_s'], 2),
                        f'{100 * r["overhead"]:.1f}%', f'{r["blocks"]} x {r["steps_per_block"]}']
                       + fl(r, 1e3 / r['real_steps_per_s'])
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
                      [[r['name'], '' if r['value'] is None else r['value'],
                        f'≥ {r["limit"]}' if r.get('at_least') else f'≤ {r["limit"]}',
                        {True: 'yes', False: '**no**', None: 'not measured'}[r['met']],
                        r['detail']] for r in records if r.get('kind') == 'target']))
  return '\n'.join(parts)


def flops_summary(records: list[dict]) -> str:
  """Achieved FLOP/s of every timed step (ganjax and each PyTorch variant), then the
  targets: what `benchmarks/gpu_run.sh` prints."""
  platform = _platform(records)
  unit = 'GFLOP/s' if platform == 'cpu' else 'TFLOP/s'
  lines = [f'{"case":<58} {"ms":>9} {unit:>9} {"of peak":>12}']

  def line(label, r, ms):
    rate, share = achieved(r, ms, platform)
    lines.append(f'{label:<58} {ms:>9.3f} {rate or r.get("gflop_note", "-"):>9} {share:>12}')

  for r in records:
    size = (f'{r.get("model")} b{r.get("batch_size")} {r.get("dtype", "float32")} '
            f'{r.get("loss", "")} pop {r.get("population", 1)} '
            f'k {r.get("steps_per_call", 1)}')
    if r.get('kind') == 'step' and 'step_ms' in r and 'interleaved_with' not in r:
      line(f'ganjax {size}', r, r['step_ms'])
    elif r.get('kind') == 'compare' and 'ratio' in r:
      line(f'ganjax {size} (vs PyTorch)', r, r['ganjax_ms'])
      for variant, ms in r.get('torch_variants_ms', {'eager': r['torch_ms']}).items():
        line(f'PyTorch {variant} {size}', r, ms)
  for r in records:
    if r.get('kind') == 'target':
      met = {True: 'met', False: 'NOT MET', None: 'not measured'}[r['met']]
      lines.append(f'target {r["name"]}: {r["value"]} ({"≥" if r.get("at_least") else "≤"} '
                   f'{r["limit"]}) {met}; {r["detail"]}')
  return '\n'.join(lines)


if __name__ == '__main__':
  with open(sys.argv[1]) as f:
    print(flops_summary([json.loads(l) for l in f if l.strip()]))
