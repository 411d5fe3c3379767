"""Preemption, kills, corrupted checkpoints, non-finite steps, bad input, multi-host.

Each test really sends the signal, corrupts the files or starts the processes,
then checks the resumed result against an uninterrupted run.
"""

import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import load_state, on_one_cpu_device, tiny_config
from ganjax import checkpoint, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli_flags(**overrides):
  """Command-line flags that reproduce `tiny_config(**overrides)`."""
  base = {'steps': 20, 'batch_size': 64, 'model_options.hidden': (32, 32), 'model_options.z_dim': 4,
          'log_every': 10, 'eval_every': 20, 'eval_samples': 500, 'checkpoint_every': 10}
  base.update(overrides)
  return ['--config=configs/ring.py'] + [
      f'--config.{k}={v}'.replace(' ', '') for k, v in base.items()]


def start(workdir, env=None, **overrides):
  return subprocess.Popen(
      [sys.executable, '-m', 'ganjax.main', f'--workdir={workdir}'] + cli_flags(**overrides),
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, **(env or {})))


def wait_for_progress(workdir, proc, timeout=120):
  log = os.path.join(workdir, 'train.log')
  deadline = time.time() + timeout
  while time.time() < deadline:
    if proc.poll() is not None:
      raise AssertionError(f'run ended early: {proc.stderr.read()[-2000:]}')
    if os.path.exists(log) and ' step ' in open(log).read():
      return
    time.sleep(0.1)
  raise AssertionError('no progress line')


def digest_of(workdir):
  with open(os.path.join(workdir, 'eval.json')) as f:
    return json.load(f)['state_digest']


def test_sigterm_saves_exits_zero_and_resumes_exactly(tmp_path):
  workdir = str(tmp_path / 'run')
  proc = start(workdir, steps=100000)
  wait_for_progress(workdir, proc)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err[-2000:]
  assert 'Preempted: saved step' in out
  saved = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), 10).latest_step()
  assert 10 <= saved < 100000
  resumed = train.train_and_evaluate(tiny_config(steps=saved + 15), workdir)
  fresh = train.train_and_evaluate(tiny_config(steps=saved + 15), str(tmp_path / 'fresh'))
  assert resumed['state_digest'] == fresh['state_digest']
  # The training time counts both sittings of the resumed run (the first one's from its
  # checkpoint), a run in one sitting's once.
  assert resumed['train_time_s'] > resumed['wall_time_s'] > 0
  assert fresh['train_time_s'] == fresh['wall_time_s'] > 0


def test_sigterm_is_acted_on_at_the_next_call(tmp_path, monkeypatch):
  """JAX dispatches calls asynchronously: a loop that never waits queues dozens of calls, and
  the final checkpoint waited for all of them (a 400k-step CPU row trained on for 3,500 steps
  and 76 s after SIGTERM). The loop keeps one call queued, so the signal stops it at the call
  it is dispatching."""
  in_flight, outputs, build = [], [], train.build

  def build_counting(*args, **kwargs):
    exp = build(*args, **kwargs)

    def step_fn(*step_args):
      # Metrics only: the state's buffers are donated to the next call.
      in_flight.append(sum(not all(x.is_ready() for x in jax.tree_util.tree_leaves(m))
                           for m in outputs))
      if len(outputs) == 30:
        os.kill(os.getpid(), signal.SIGTERM)  # handled between this call and the loop's check
      state, metrics = exp.step_fn(*step_args)
      outputs.append(metrics)
      return state, metrics
    return dataclasses.replace(exp, step_fn=step_fn)

  monkeypatch.setattr(train, 'build', build_counting)
  cfg = tiny_config(steps=100_000, steps_per_call=10, log_every=100_000, eval_every=100_000,
                    checkpoint_every=100_000)
  summary = train.train_and_evaluate(cfg, str(tmp_path / 'run'))
  assert summary['preempted'] and summary['step'] == 310
  saved = checkpoint.Checkpointer(str(tmp_path / 'run' / 'checkpoints'), 10).latest_step()
  assert saved == 310
  assert len(in_flight) == 31 and max(in_flight) <= 1, in_flight


def test_sigkill_during_async_saves_resumes_from_last_complete(tmp_path):
  workdir = str(tmp_path / 'run')
  proc = start(workdir, steps=100000, checkpoint_every=1, keep_checkpoints=2)  # always saving
  wait_for_progress(workdir, proc)
  time.sleep(random.Random(0).uniform(0.2, 1.5))
  proc.kill()
  proc.wait(timeout=60)
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  complete = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()]
  assert complete, os.listdir(ckpt_dir)
  last = max(complete)
  target = last + 12
  resumed = train.train_and_evaluate(
      tiny_config(steps=target, checkpoint_every=1, keep_checkpoints=2), workdir)
  assert not [d for d in os.listdir(ckpt_dir) if 'tmp' in d]  # partial saves cleaned up
  fresh = train.train_and_evaluate(tiny_config(steps=target), str(tmp_path / 'fresh'))
  assert resumed['state_digest'] == fresh['state_digest']


def _corrupt(step_dir):
  for root, _, files in os.walk(os.path.join(step_dir, 'state')):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'r+b') as f:
        f.truncate(max(0, os.path.getsize(path) // 3))


def test_corrupted_latest_checkpoint_falls_back_to_previous(tmp_path, caplog):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(steps=20), workdir)
  _corrupt(os.path.join(workdir, 'checkpoints', '20'))
  resumed = train.train_and_evaluate(tiny_config(steps=30), workdir)
  assert 'falling back' in caplog.text or 'unreadable' in caplog.text
  fresh = train.train_and_evaluate(tiny_config(steps=30), str(tmp_path / 'fresh'))
  assert resumed['state_digest'] == fresh['state_digest']


def test_no_usable_checkpoint_names_the_directory(tmp_path):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(steps=20), workdir)
  for step in ('10', '20'):
    _corrupt(os.path.join(workdir, 'checkpoints', step))
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '10', 'meta'))
  with pytest.raises(checkpoint.NoUsableCheckpointError,
                     match=os.path.join(workdir, 'checkpoints')):
    train.train_and_evaluate(tiny_config(steps=30), workdir)


def test_checkpoint_from_another_config_is_a_clear_error(tmp_path):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(steps=10), workdir)
  with pytest.raises(checkpoint.CheckpointMismatchError,
                     match=r"d_params'\]\['Dense_0'\]\['bias'\]: checkpoint float32\[1, 32\], "
                           r"config float32\[1, 16\]"):
    train.train_and_evaluate(tiny_config(steps=20, **{'model_options.hidden': (16, 16)}), workdir)


def test_non_finite_step_stops_and_keeps_last_good_checkpoint(tmp_path):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(steps=5, checkpoint_every=5), workdir)
  # Resume with an absurd R1 weight: the first resumed step overflows. (The penalty weight is
  # not part of the state, unlike learning rates, which live in the optimiser states; another
  # penalty is another experiment, so the resume must allow the change.)
  cfg = tiny_config(steps=50, checkpoint_every=1, log_every=50, penalty='r1',
                    penalty_weight=1e38, allow_config_change=True)
  with pytest.raises(FloatingPointError, match=r'non-finite .*d_grad_norm.* at step 6 '):
    train.train_and_evaluate(cfg, workdir)
  saved = sorted(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
  assert saved == [5]
  state = load_state(workdir)
  assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(state['members'])
             if np.issubdtype(np.asarray(x).dtype, np.floating))


def test_skip_nonfinite_counts_and_keeps_parameters_finite(tmp_path):
  cfg = tiny_config(steps=12, skip_nonfinite=True)
  cfg.d_optimizer.learning_rate = 1e30
  summary = train.train_and_evaluate(cfg, str(tmp_path / 'run'))
  assert summary['skipped_steps'] == 12  # every step: the D update poisons the G loss
  state = load_state(str(tmp_path / 'run'))
  assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(state['members']['g_params']))


@pytest.mark.parametrize('overrides,match', [
    ({'dataset': 'mnist', 'data_dir': '/nonexistent/tfds'},
     r'dataset mnist .* is not prepared under /nonexistent/tfds.*python -m ganjax.prepare mnist'),
    ({'eval_samples': 0}, 'eval_samples=0'),
    ({'ema_decay': 1.5}, r'ema_decay=1.5; it must be in \[0, 1\)'),
    ({'penalty': 'clip', 'penalty_weight': 0.0}, 'for clip, which projects the parameters: positive'),
    ({'population': 2, 'g_optimizer.learning_rate': (1e-4, 1e-4, 1e-4)}, 'one per population'),
])
def test_bad_input_fails_before_compiling(tmp_path, overrides, match):
  with pytest.raises((ValueError, FileNotFoundError), match=match):
    train.train_and_evaluate(tiny_config(**overrides), str(tmp_path / 'run'))
  assert not os.path.exists(tmp_path / 'run' / 'checkpoints')


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(PermissionError, match='is not writable'):
    train.train_and_evaluate(tiny_config(), str(blocker / 'run'))


@pytest.mark.parametrize('args,match', [
    (['--config.loss=nope'], "error: unknown loss 'nope'; valid: classic, wgan, hinge"),
    (['--config.dataset=svhn'],
     "error: unknown dataset 'svhn'; valid: ring, grid, gdpp_ring, digits"),
    (['--config.batch_size=-8'], 'error: batch_size=-8; it must be a positive integer.'),
])
def test_command_line_errors_are_one_line(tmp_path, args, match):
  proc = subprocess.run([sys.executable, '-m', 'ganjax.main', f'--workdir={tmp_path}/w'] + args,
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1].startswith(match)
  assert 'Traceback' not in proc.stderr


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
  sgd = {'g_optimizer.name': 'sgd', 'd_optimizer.name': 'sgd',
         'g_optimizer.learning_rate': 3e-3, 'd_optimizer.learning_rate': 3e-3}
  port = _free_port()
  workdir = str(tmp_path / 'multi')
  env = {'XLA_FLAGS': '--xla_force_host_platform_device_count=2', 'JAX_PLATFORMS': 'cpu'}
  logs = [open(tmp_path / f'process{i}.log', 'w+') for i in range(2)]  # files: no pipe stalls
  procs = [subprocess.Popen(
      [sys.executable, '-m', 'ganjax.main', f'--workdir={workdir}',
       f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2', f'--process_id={i}']
      + cli_flags(**sgd), cwd=ROOT, stdout=logs[i], stderr=subprocess.STDOUT, text=True,
      env=dict(os.environ, **env)) for i in range(2)]
  for p in procs:
    p.wait(timeout=300)
  outs = []
  for p, log in zip(procs, logs):
    log.seek(0)
    outs.append(log.read())
    assert p.returncode == 0, outs[-1][-3000:]
  assert 'Done: step 20' in outs[0] and 'Done' not in outs[1]  # process 0 reports
  assert not os.path.exists(os.path.join(workdir, 'train.log.1'))
  # The reference runs on the CPU too: here if this process is one CPU device, else in a
  # JAX_PLATFORMS=cpu process (a GPU's rounding differs by more than the tolerance).
  if on_one_cpu_device():
    train.train_and_evaluate(tiny_config(**sgd), str(tmp_path / 'single'))
  else:
    proc = subprocess.run(
        [sys.executable, '-m', 'ganjax.main', f'--workdir={tmp_path / "single"}']
        + cli_flags(**sgd), cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=''))
    assert proc.returncode == 0, proc.stderr[-3000:]
  multi = load_state(workdir)['members']
  single = load_state(str(tmp_path / 'single'))['members']
  for k in ('g_params', 'd_params'):
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5), multi[k], single[k])
