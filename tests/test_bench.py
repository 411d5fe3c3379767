"""Smoke tests of the benchmark harness machinery (tiny cases, a few steps each)."""

import json
import os
import time

import jax
import numpy as np
import pytest

from benchmarks import bench, flops, report as bench_report
from benchmarks import cases as bench_cases
from ganjax import models, parallel, step as step_lib

TINY = {'model_options.hidden': [16, 16], 'model_options.z_dim': 4, 'batch_size': 64}
SETTINGS = dict(bench_cases.settings(quick=True), case_s=0.2, min_steps=3, max_steps=5,
                compare_reps=2, compare_s=0.5, saves=1)


def _budget():
  return bench_cases.Budget(SETTINGS, time.time() + 120)


def test_median_and_config_overrides():
  assert bench_cases.median([3.0, 1.0, 2.0]) == 2.0
  assert bench_cases.median([4.0, 1.0, 2.0, 3.0]) == 2.5
  c = bench_cases.make_config('mlp', 'wgan', 2, TINY).config
  assert (c.batch_size, c.model_options.hidden, c.population, c.n_dis) == (64, (16, 16), 2, 5)
  assert bench_cases.make_config('dcgan32').config.batch_size == 64
  assert bench_cases.make_config('mlp').config.batch_size == 512
  with pytest.raises(ValueError, match='valid: mlp, dcgan32'):
    bench_cases.make_config('resnet')
  config = bench_cases.make_config('mlp').config
  if 'dtype' not in config:  # the bfloat16 cases are skipped until the config has the field
    with pytest.raises(bench_cases.Skipped, match="no 'dtype' field"):
      bench_cases.make_config('mlp', overrides={'dtype': 'bfloat16'})


def test_step_case_times_the_compiled_step():
  [r] = bench_cases.case_step(dict(kind='step', model='mlp', overrides=TINY), _budget())
  assert r['kind'] == 'step' and r['model'] == 'mlp' and r['devices'] == jax.device_count()
  assert (r['loss'], r['population'], r['batch_size'], r['per']) == (
      'classic', 1, 64, 'generator step')
  assert 3 <= r['steps'] <= 5 and r['compile_s'] > 0 and r['peak_rss_mb'] > 0
  assert 0 < r['step_ms_min'] <= r['step_ms'] <= r['step_ms_max']


def test_targets_are_ratios_of_two_measured_numbers():
  step = lambda pop, ms: dict(kind='step', model='mlp', loss='classic', devices=1,
                              population=pop, step_ms=ms, batch_size=512, gflop=0.4)
  records = [
      dict(kind='env', platform='cpu'), step(1, 2.0), step(4, 10.0), step(16, 30.0),
      dict(kind='compare', model='mlp', ratio=0.6, ganjax_ms=6.0, torch_ms=10.0, batch_size=512,
           rep_ratio_min=0.5, rep_ratio_max=0.7, reps=2, steps_per_rep=3, torch_threads=2,
           params_generator=10, params_discriminator=20, gflop=0.4),
      dict(kind='real_vs_synthetic', model='mlp', dataset='ring', batch_size=512, overhead=0.02,
           real_steps_per_s=98.0, synthetic_steps_per_s=100.0, blocks=2, steps_per_block=3),
      dict(kind='checkpoint', model='mlp', blocks_steps=1.5, save_call_ms=3.0, step_ms=2.0,
           checkpoint_bytes=2**20, save_and_wait_ms=9.0, save_call_ms_max=4.0,
           step_during_save_ms=2.5),
  ]
  got = {t['name']: t for t in bench_report.targets(records)}
  pop4 = got['mlp population 4: cost / one member (classic, 1 dev)']
  assert (pop4['value'], pop4['limit'], pop4['met']) == (5.0, 4, False)
  assert got['mlp population 16: cost / one member (classic, 1 dev)']['met']
  assert got['mlp b512 step: ganjax / fastest PyTorch']['met'] is False
  assert got['dcgan32 b64 step: ganjax / fastest PyTorch']['met'] is None  # not measured
  assert got['ring real input: throughput lost vs synthetic']['met']
  assert got['mlp async save(): blocking / one step']['met'] is False
  text = bench_report.markdown(records + list(got.values()) +
                        [dict(kind='step', model='dcgan64', skipped='too slow')])
  assert '| mlp population 4: cost / one member (classic, 1 dev) | 5.0 | ≤ 4 | **no** |' in text
  assert 'too slow' in text
  assert '| 200.0 |' in text  # GFLOP/s of the 2 ms, 0.4 GFLOP step


def test_accelerator_targets_use_the_fastest_pytorch_variant_and_flops():
  kind = 'NVIDIA H200'
  step = lambda model, batch, ms, dtype='float32', k=1: dict(
      kind='step', model=model, loss='classic', devices=1, population=1, steps_per_call=k,
      batch_size=batch, dtype=dtype, step_ms=ms, device_kind=kind, gflop=100.0)
  compare = lambda model, batch, ms, variants: dict(
      kind='compare', model=model, batch_size=batch, device_kind=kind, gflop=100.0,
      ganjax_ms=ms, torch_ms=min(variants.values()), torch_variant=min(variants, key=variants.get),
      torch_variants_ms=variants, ratio=ms / min(variants.values()), rep_ratio_min=0.1,
      rep_ratio_max=2.0, reps=2, steps_per_rep=3, torch_threads=16, params_generator=1,
      params_discriminator=1, torch_skipped={'compile': 'TimeoutError: did not finish'})
  records = [dict(kind='env', platform='gpu'),
             compare('dcgan32', 512, 4.0, {'eager': 7.0, 'cuda_graph': 4.5}),
             compare('dcgan64', 256, 9.0, {'eager': 9.4, 'cuda_graph': 7.0}),
             compare('mlp', 512, 0.6, {'eager': 6.0, 'cuda_graph': 0.6}),
             step('dcgan32', 512, 2.0, 'bfloat16'), step('dcgan32', 512, 4.0),
             step('mlp', 512, 0.1, k=100)]
  records += [dict(r, kind='step', step_ms=r['ganjax_ms']) for r in records[2:3]]
  got = {t['name']: t for t in bench_report.targets(records)}
  r = got['dcgan32 b512 step: ganjax / fastest PyTorch']
  assert r['value'] == pytest.approx(4.0 / 4.5) and r['met'] is False  # limit 0.8
  assert got['dcgan64 b256 step: ganjax / fastest PyTorch']['met'] is False
  assert got['dcgan32 b512 bfloat16: speed-up over float32']['value'] == 2.0
  assert got['dcgan32 b512 bfloat16: speed-up over float32']['met'] is True
  assert got['dcgan64 b256 bfloat16: speed-up over float32']['met'] is None  # no bf16 step
  r = got['mlp b512, 100 steps per call: speed-up over PyTorch CUDA graph']
  assert (r['value'], r['met']) == (6.0, True)
  text = bench_report.markdown(records + list(got.values()))
  assert 'skipped: TimeoutError' in text and '| ≥ 1.6 |' in text
  assert '| 25.00 | 5.1% |' in text  # 100 GFLOP in 4 ms on an H200: 25 TFLOP/s of 494.5 (TF32)
  summary = bench_report.flops_summary(records + list(got.values()))
  assert 'PyTorch cuda_graph dcgan32 b512' in summary and 'NOT MET' in summary


def test_peak_table():
  assert flops.peak_tflops('NVIDIA H200', 'bfloat16') == 989.5
  assert flops.peak_tflops('NVIDIA H100 80GB HBM3') == 494.5
  assert flops.peak_tflops('NVIDIA H100 PCIe') == 378.0
  assert flops.peak_tflops('NVIDIA A100-SXM4-80GB', 'bfloat16') == 312.0
  assert flops.peak_tflops('NVIDIA H200 NVL') is None
  assert flops.peak_tflops('cpu') is None


@pytest.mark.parametrize('model,loss,population,overrides', [
    ('dcgan32', 'classic', 1, {}), ('mlp', 'relativistic', 2, {'n_dis': 2})])
def test_hand_flops_agree_with_xla_on_cpu(model, loss, population, overrides, monkeypatch):
  """XLA counts ganjax's CPU convolutions (matmuls); the hand count misses only elementwise
  and optimiser work. Traced and lowered only (no compile): about a second each.

  The CPU's model and backend on every machine: the convolutions as matmuls (on a GPU
  'auto' would pick the phase convolution, whose zero taps XLA counts: 1.14x the hand
  count), lowered for the CPU (XLA:GPU's cost analysis returned no FLOPs on an H200)."""
  monkeypatch.setattr(models, '_resolve_impl', lambda impl: 'matmul')
  r = bench_cases.make_config(model, loss, population, overrides)
  c, shape = r.config, bench_cases.MODELS[model][1]
  pair = r.model.build(shape, r.model_options)
  state = jax.eval_shape(lambda: step_lib.init_members(
      pair, r.step, shape, r.seeds, r.g_learning_rate, r.d_learning_rate))
  batch = jax.ShapeDtypeStruct((c.n_dis, c.batch_size) + shape, np.float32)
  weight = jax.ShapeDtypeStruct(r.penalty_weight.shape, np.float32)
  cpu_mesh = parallel.make_mesh(jax.devices('cpu')[:1])
  lowered = step_lib.make_step(pair, r.step, cpu_mesh).lower(state, batch, weight)
  xla, hand = lowered.cost_analysis()['flops'], flops.step_flops(c, shape)
  assert hand <= xla <= 1.04 * hand
  assert flops.step_flops(bench_cases.make_config(model, 'wgan').config, shape) is None


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason=(
    'the CPU path (PyTorch eager alone); on a GPU the peers include the CUDA-graph and '
    'torch.compile steps, run by benchmarks/gpu_run.sh'))
def test_compare_interleaves_ganjax_and_torch():
  pytest.importorskip('torch')
  step, compare = bench_cases.case_compare(dict(kind='compare', model='mlp', overrides=TINY),
                                     _budget())
  assert step['kind'] == 'step' and step['interleaved_with'] == 'torch'
  assert compare['reps'] == 2 and compare['ganjax_ms'] > 0 and compare['torch_ms'] > 0
  assert compare['torch_variant'] == 'eager' and list(compare['torch_variants_ms']) == ['eager']
  assert compare['gflop'] == pytest.approx(flops.step_flops(
      bench_cases.make_config('mlp', overrides=TINY).config, (2,)) / 1e9, rel=1e-4)
  assert compare['ratio'] == pytest.approx(compare['ganjax_ms'] / compare['torch_ms'], rel=5e-3)
  assert compare['rep_ratio_min'] <= compare['rep_ratio_max']
  assert compare['params_generator'] == (4 + 1) * 16 + 17 * 16 + 17 * 2


@pytest.mark.parametrize('model,shape', [('mlp', (2,)), ('dcgan', (32, 32, 3)),
                                         ('dcgan', (64, 64, 3))])
def test_torch_reference_has_ganjax_parameter_counts(model, shape):
  pytest.importorskip('torch')
  from benchmarks import torch_reference as ref  # pylint: disable=g-import-not-at-top
  pair = models.get(model).build(shape)
  count = lambda module, x: sum(
      l.size for l in jax.tree_util.tree_leaves(jax.eval_shape(module.init, jax.random.PRNGKey(0),
                                                               x)))
  gen, disc, z_dim = ref.make_models(model, shape)
  assert z_dim == pair.z_dim
  assert ref.param_count(gen) == count(pair.generator, jax.ShapeDtypeStruct((1, z_dim), 'f4'))
  assert ref.param_count(disc) == count(pair.discriminator,
                                        jax.ShapeDtypeStruct((1,) + shape, 'f4'))


def test_run_all_uses_a_worker_per_device_count_and_writes_reports(tmp_path):
  groups = [(2, [dict(kind='step', model='mlp', overrides=TINY),
                 dict(kind='step', model='mlp', population=2, overrides=TINY,
                      loss='no_such_loss'),
                 dict(kind='checkpoint', model='mlp', overrides=TINY)]),  # not in `only`
            (1, [dict(kind='input', dataset='ring')])]                    # no worker
  records = bench.run_all(True, str(tmp_path), groups, dict(SETTINGS, deadline_s=120),
                          only=('step',))
  assert {r['kind'] for r in records} <= {'env', 'step', 'total', 'target'}
  steps = [r for r in records if r['kind'] == 'step' and 'step_ms' in r]
  assert len(steps) == 1 and steps[0]['devices'] == 2 and steps[0]['batch_size'] == 64
  assert any('no_such_loss' in r.get('error', '') for r in records)
  lines = (tmp_path / 'bench_quick_step.jsonl').read_text().splitlines()
  assert [json.loads(l)['kind'] for l in lines][0] == 'env'
  assert '## Train step' in (tmp_path / 'bench_quick_step.md').read_text()
  with pytest.raises(ValueError, match='unknown case kinds'):
    bench.run_all(True, str(tmp_path), groups, SETTINGS, only=('nope',))
