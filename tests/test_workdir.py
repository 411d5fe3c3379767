"""What may share a workdir: one run at a time, one experiment, a full disk, option ranges.

Each test does what a user did: starts a second run on a busy workdir, resumes with
another loss, fills the disk (injected, and a real 300 KB tmpfs where mounting is
allowed), gives every config field a bad value.
"""

import errno
import json
import logging
import math
import os
import re
import socket
import subprocess
import sys

import pytest
from absl import flags
from hypothesis import given, settings, strategies as st
from ml_collections import config_dict, config_flags

from conftest import tiny_config
from configs import default
from ganjax import checkpoint, losses, main, models, resolve, train, workdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -------------------------------------------------------- one run at a time --

_HOLDER = '''
import sys, time
from ganjax import workdir
with workdir.lock(sys.argv[1]):
  print('locked', flush=True)
  time.sleep(600)
'''


def test_a_second_run_fails_at_once_naming_the_holder_and_a_killed_holder_never_blocks(
    tmp_path):
  w = tmp_path / 'run'
  w.mkdir()
  holder = subprocess.Popen([sys.executable, '-c', _HOLDER, str(w)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    proc = subprocess.run([sys.executable, '-m', 'ganjax.main', f'--workdir={w}',
                           '--config=configs/ring.py'], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf'error: workdir {re.escape(str(w))} is in use by pid {holder.pid} on '
        rf'{re.escape(socket.gethostname())} since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\S+ '
        rf'\(lock file {re.escape(str(w / ".lock"))}\); wait for that run to end or stop it, '
        r'or use another --workdir\.', line), line
    # The library entry point holds it too; neither wrote anything.
    with pytest.raises(workdir.WorkdirBusyError, match=f'pid {holder.pid}'):
      train.train_and_evaluate(tiny_config(steps=10), str(w))
    assert sorted(os.listdir(w)) == ['.lock']
  finally:
    holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
    holder.wait(timeout=60)
  with workdir.lock(str(w)):  # what every run takes first
    assert json.loads((w / '.lock').read_text())['pid'] == os.getpid()


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path):
  with workdir.lock(str(tmp_path)):
    with workdir.lock(str(tmp_path)):  # main.py holds it, then train_and_evaluate
      pass
    assert str(tmp_path.resolve()) in workdir._held  # pylint: disable=protected-access
  assert not workdir._held  # pylint: disable=protected-access
  probe = subprocess.run([sys.executable, '-c', 'import sys; from ganjax import workdir\n'
                          'with workdir.lock(sys.argv[1]): print("ok")', str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
  assert probe.stdout.strip() == 'ok', probe.stderr


# ---------------------------------------------------- one experiment per workdir --

def test_config_changes_are_the_defining_fields_that_differ():
  before = tiny_config()
  after = tiny_config(loss='hinge', seed=3, steps=99, log_every=33, checkpoint_every=11,
                      name='other', **{'model_options.hidden': (16, 16),
                                       'g_optimizer.learning_rate': 1e-3})
  changes = workdir.config_changes(before.to_json(), after.to_json())
  assert changes == {'loss': ['classic', 'hinge'], 'seed': [0, 3],
                     'model_options.hidden': [[32, 32], [16, 16]],
                     'g_optimizer.learning_rate': [2e-4, 1e-3]}
  assert workdir.describe({'loss': ['classic', 'hinge']}) == "loss: 'classic' → 'hinge'"
  # A field one config lacks (added since the checkpoint was written) is not compared.
  old = json.loads(before.to_json())
  del old['seed']
  assert 'seed' not in workdir.config_changes(json.dumps(old), after.to_json())
  # Every field not listed as scheduling or reporting defines the experiment, new ones too.
  assert {'steps', 'log_every', 'steps_per_call', 'skip_nonfinite'} <= workdir.NOT_DEFINING
  assert not {'loss', 'loss_options', 'penalty', 'penalty_weight', 'model', 'model_options',
              'dataset', 'data_seed', 'seed', 'population', 'batch_size', 'g_optimizer',
              'd_optimizer', 'pack', 'unroll_steps', 'update_order', 'dtype'
              } & workdir.NOT_DEFINING


def test_resume_with_another_experiment_stops_unless_allowed(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='absl')
  w = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(steps=10), w)
  with pytest.raises(workdir.ConfigChangedError) as e:
    train.train_and_evaluate(tiny_config(steps=20, loss='hinge', seed=4, log_every=20), w)
  message = str(e.value)
  assert '\n' not in message
  assert message.startswith(
      f'the checkpoint at step 10 in {w}/checkpoints was trained with another config: '
      "loss: 'classic' → 'hinge', seed: 0 → 4. Rerun with its config"), message
  assert 'allow_config_change=True' in message
  assert sorted(os.listdir(os.path.join(w, 'checkpoints'))) == ['10']  # nothing trained
  # Schedule and reporting fields may change; allow_config_change lets the loss change.
  summary = train.train_and_evaluate(
      tiny_config(steps=20, loss='hinge', log_every=20, eval_every=10, checkpoint_every=20,
                  allow_config_change=True), w)
  assert 'Resuming with a changed config (allow_config_change): ' \
         "loss: 'classic' → 'hinge'." in caplog.text
  assert f'Resumed from {w}/checkpoints at step 10.' in caplog.text
  assert summary['loss'] == 'hinge' and summary['step'] == 20
  with open(os.path.join(w, 'eval.json')) as f:
    assert json.load(f)['config_changes'] == {'loss': ['classic', 'hinge']}
  with open(os.path.join(w, 'checkpoints', '20', 'meta', 'metadata')) as f:
    meta = json.load(f)  # what the next resume compares with
  assert meta['config_changes'] == {'loss': ['classic', 'hinge']}
  assert json.loads(meta['config'])['loss'] == 'hinge'


def test_check_resume_keeps_the_record_and_skips_checkpoints_without_a_config():
  classic, hinge, wgan = (resolve.resolve_config(tiny_config(loss=loss)).config.to_json()
                          for loss in ('classic', 'hinge', 'wgan'))
  # Resuming again with the allowed config is no new change; the record is kept.
  record = {'loss': ['classic', 'hinge']}
  meta = {'step': 20, 'config': hinge, 'config_changes': record}
  assert workdir.check_resume(meta, hinge, False, 'here') == record
  # A second allowed change keeps each field's first value.
  changes = workdir.check_resume(meta, wgan, True, 'here')
  assert changes['loss'] == ['classic', 'wgan'] and changes['penalty'] == ['none', 'wgan_gp']
  with pytest.raises(workdir.ConfigChangedError, match=(
      r"^the checkpoint at step 20 in here was trained with another config: d_optimizer.b2: "
      r"0.999 → 0.9, g_optimizer.b2: 0.999 → 0.9, loss: 'hinge' → 'wgan', n_dis: 1 → 5, "
      r"penalty: 'none' → 'wgan_gp'\. Rerun")):  # the loss's defaults resolved, all listed
    workdir.check_resume(meta, wgan, False, 'here')
  # A checkpoint written before configs were stored resumes as before, unchecked.
  assert workdir.check_resume({'step': 10}, hinge, False, 'here') == {}
  assert workdir.check_resume({'step': 10, 'config': classic}, classic, False, 'here') == {}


# ----------------------------------------------------------------- a full disk --

def _state(value: float):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return {'w': jnp.full((256, 256), value, jnp.float32)}


def test_too_little_free_space_stops_before_the_save_in_one_line(tmp_path, monkeypatch):
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ckpt'), every=1, keep=2)
  assert ckpt.save(1, _state(1.0), {'step': 1})
  ckpt.wait()
  monkeypatch.setattr(checkpoint, 'free_bytes', lambda directory: 1000)
  with pytest.raises(checkpoint.DiskFullError) as e:
    ckpt.save(2, _state(2.0), {'step': 2})
  assert e.value.errno == errno.ENOSPC
  assert re.fullmatch(
      rf'checkpoint step 2 was not saved: no space left in {re.escape(ckpt.directory)} \(the '
      r'state needs about 2\d\d KB, 1 KB free\); the last complete checkpoint \(step 1\) is '
      r'kept: free space and rerun to resume from it\.', str(e.value)), str(e.value)
  ckpt.close()
  assert sorted(os.listdir(ckpt.directory)) == ['1']


@pytest.mark.parametrize('error', [
    OSError(errno.ENOSPC, 'No space left on device'),
    ValueError('RESOURCE_EXHAUSTED: Error writing local file "x": Failed to write 7799 bytes '
               "to file 11: No space left on device [os_error_code='28']"),
])
def test_an_enospc_from_the_saver_is_translated_and_the_partial_save_removed(tmp_path, error):
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ckpt'), every=1, keep=2)
  assert ckpt.save(1, _state(1.0), {'step': 1})
  ckpt.wait()

  def full(step, *args, **kwargs):  # as Orbax leaves it: a partial temporary directory
    os.makedirs(os.path.join(ckpt.directory, f'{step}.orbax-checkpoint-tmp', 'state'))
    raise error

  ckpt.manager.save = full
  assert ckpt.save(2, _state(2.0), {'step': 2})
  for call in (ckpt.wait, ckpt.close):  # raised by every later call, as any saver error
    with pytest.raises(checkpoint.DiskFullError,
                       match=r'^checkpoint step 2 was not saved: no space left in .* the last '
                             r'complete checkpoint \(step 1\) is kept'):
      call()
  assert sorted(os.listdir(ckpt.directory)) == ['1']


def test_a_full_disk_mid_run_keeps_the_last_checkpoint_and_a_rerun_resumes(
    tmp_path, monkeypatch, caplog):
  caplog.set_level(logging.INFO, logger='absl')
  w = str(tmp_path / 'run')
  probes = []  # the disk fills up after the first save
  monkeypatch.setattr(checkpoint, 'free_bytes',
                      lambda directory: probes.append(directory) or (10**12 if len(probes) == 1
                                                                      else 0))
  with pytest.raises(checkpoint.DiskFullError,
                     match=r'^checkpoint step 20 .* \(step 10\) is kept'):
    train.train_and_evaluate(tiny_config(steps=30), w)
  assert sorted(os.listdir(os.path.join(w, 'checkpoints'))) == ['10']
  monkeypatch.undo()  # space freed
  summary = train.train_and_evaluate(tiny_config(steps=30), w)
  assert f'Resumed from {w}/checkpoints at step 10.' in caplog.text
  assert summary['step'] == 30
  assert sorted(os.listdir(os.path.join(w, 'checkpoints'))) == ['10', '20', '30']


@pytest.fixture
def small_filesystem(tmp_path):
  """A 300 KB tmpfs, where this process may mount one (root on Linux); else skipped."""
  mount = tmp_path / 'small'
  mount.mkdir()
  made = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=300k', 'tmpfs', str(mount)],
                        capture_output=True, text=True, check=False)
  if made.returncode:
    pytest.skip(f'cannot mount a tmpfs here: {made.stderr.strip()}')
  yield mount
  subprocess.run(['umount', str(mount)], check=False)


def test_unretrieved_full_disk_failures_of_tasks_and_gathers_are_not_logged(caplog):
  """Orbax's failed writes after a full disk leave Tasks and the _GatheringFutures around
  them unretrieved; asyncio logs each with a traceback unless ganjax drops the record. Any
  other unretrieved failure is still logged."""
  import asyncio
  import gc
  checkpoint._quiet_failed_write_logs()

  async def write(error):
    raise error

  async def leave_unretrieved(error):
    task = asyncio.ensure_future(write(error))
    gathered = asyncio.gather(asyncio.ensure_future(write(error)))
    await asyncio.sleep(0.01)
    assert task.done() and gathered.done()  # both failed; nobody reads their exceptions

  full = OSError(errno.ENOSPC, 'Failed writing: No space left on device')
  with caplog.at_level(logging.ERROR, logger='asyncio'):
    asyncio.run(leave_unretrieved(full))
    gc.collect()
    assert [r.getMessage() for r in caplog.records] == []
    asyncio.run(leave_unretrieved(PermissionError('read-only checkpoint directory')))
    gc.collect()
  kinds = sorted(r.getMessage().split()[0] for r in caplog.records)
  assert kinds == ['Task', '_GatheringFuture'], kinds


def test_closed_loop_callbacks_and_unawaited_writes_after_a_failure_are_not_printed():
  """TensorStore's native threads that finish a write after Orbax closed its loop report
  "Event loop is closed" through sys.unraisablehook (in about half the real full-disk runs,
  interleaved with the log); ganjax drops exactly those, and Orbax's unawaited-write warning.
  Any other unraisable exception or warning is still reported."""
  import asyncio
  import warnings
  seen = []
  hook = checkpoint.without_closed_loop_callbacks(lambda a: seen.append(str(a.exc_value)))

  def report(error, obj=None):
    hook(type('UnraisableHookArgs', (), dict(
        exc_type=type(error), exc_value=error, exc_traceback=error.__traceback__,
        err_msg=None, object=obj)))

  loop = asyncio.new_event_loop()
  loop.close()
  try:
    loop.call_soon_threadsafe(print)
  except RuntimeError as e:
    closed = e
  report(closed)
  assert seen == []
  report(closed, obj=loop)  # reported with an object: not a native thread's callback
  try:
    raise RuntimeError('Event loop is closed')  # not from asyncio's call_soon_threadsafe
  except RuntimeError as e:
    report(e)
  assert seen == ['Event loop is closed'] * 2
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    checkpoint._quiet_failed_write_logs()
    warnings.warn("coroutine 'async_serialize_from_host.<locals>.write_fragment' was never "
                  'awaited', RuntimeWarning)
    warnings.warn("coroutine 'mine' was never awaited", RuntimeWarning)
  assert [str(w.message) for w in caught] == ["coroutine 'mine' was never awaited"]


@pytest.mark.slow
def test_a_real_full_filesystem_stops_in_one_line_keeping_complete_checkpoints(
    small_filesystem):
  w = small_filesystem / 'run'
  args = ['--config=configs/ring.py', '--config.steps=60', '--config.batch_size=64', '--config.model_options.hidden=(32,32)',
          '--config.model_options.z_dim=4', '--config.log_every=10', '--config.eval_every=60',
          '--config.eval_samples=500', '--config.checkpoint_every=10']
  proc = subprocess.run([sys.executable, '-m', 'ganjax.main', f'--workdir={w}'] + args,
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1, proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.strip() and not re.match(r'I\d{4} ', l)]
  assert len(errors) == 1, proc.stderr[-3000:]  # no tracebacks: one line besides the INFO log
  match = re.fullmatch(
      rf'error: checkpoint step (\d+) was not saved: no space left in {re.escape(str(w))}'
      r'/checkpoints \(the state needs about [\d.]+ KB, [\d.]+ (KB|bytes) free\); the last '
      r'complete checkpoint \(step (\d+)\) is kept: free space and rerun to resume from it\.',
      errors[0])
  assert match, errors[0]
  failed, kept = int(match.group(1)), int(match.group(3))
  assert kept < failed
  assert sorted(os.listdir(w / 'checkpoints')) == [str(s) for s in range(10, kept + 1, 10)
                                                     if s > kept - 30]
  # Resuming once space is free: test_a_full_disk_mid_run_keeps_the_last_checkpoint_and_...


# --------------------------------------------------------------- option ranges --

def _flat_fields(config, prefix=''):
  """{dotted field: its declared type} of a ConfigDict."""
  fields = {}
  for key in config.keys():
    value = config[key]
    if isinstance(value, config_dict.ConfigDict):
      fields.update(_flat_fields(value, f'{prefix}{key}.'))
    else:
      fields[prefix + key] = config.get_type(key)
  return fields


FIELDS = _flat_fields(default.get_config())
FREE_TEXT = ('name', 'data_dir', 'inception_weights')  # any string is a valid name or path:
                                                     # a new free-text field goes here


def _cli(values):
  return st.sampled_from(values).map(lambda v: ('cli', v))


def _py(values):
  return st.sampled_from(values).map(lambda v: ('python', v))


def _floats_outside(low, high):
  """Finite floats outside [low, high), as the command line writes them."""
  return st.one_of(st.floats(max_value=low, exclude_max=True, allow_nan=False,
                             allow_infinity=False),
                   st.floats(min_value=high, allow_nan=False, allow_infinity=False)
                   ).map(lambda v: ('cli', repr(v)))


def _nonpositive():
  return st.floats(max_value=0.0, allow_nan=False, allow_infinity=False).map(
      lambda v: ('cli', repr(v)))


# Out-of-range values of known fields, on top of the ones every field of its type gets.
_ZERO = _cli(['0'])
RANGES = {
    'loss_options.label_smoothing': _floats_outside(0.0, 1.0),
    'loss_options.margin': _nonpositive(),
    'g_optimizer.learning_rate': st.one_of(_nonpositive(), _cli(['(1e-4,2e-4)'])),
    'd_optimizer.learning_rate': st.one_of(_nonpositive(), _cli(['(1e-4,2e-4)'])),
    'g_optimizer.b1': _floats_outside(0.0, 1.0), 'g_optimizer.b2': _floats_outside(0.0, 1.0),
    'd_optimizer.b1': _floats_outside(0.0, 1.0), 'd_optimizer.b2': _floats_outside(0.0, 1.0),
    'penalty_weight': st.floats(max_value=0.0, exclude_max=True, allow_nan=False,
                                allow_infinity=False).map(lambda v: ('cli', repr(v))),
    'ema_decay': _floats_outside(0.0, 1.0),
    'seed': _cli([str(2**31)]), 'data_seed': _cli([str(2**31)]),
    'steps_per_call': _cli(['3', '0']),  # 3 divides neither steps nor the intervals
    'model_options.hidden': _cli(['(0,)', '()']),
    'name': _py(['']),
    'image_metrics': _py([1, 'yes']),
}
for _field in ('batch_size', 'steps', 'population', 'log_every', 'eval_every', 'eval_samples',
               'checkpoint_every', 'keep_checkpoints', 'n_dis', 'feature_steps', 'kid_subsets',
               'kid_subset_size', 'population_chunk', 'pack', 'model_options.z_dim',
               'model_options.width', 'model_options.maxout'):
  RANGES[_field] = _ZERO


def invalid_values(field: str, kind: type) -> st.SearchStrategy:
  """('cli', text) or ('python', value) draws that are invalid for `field` whatever it is:
  by its type (wrong types, unparsable text, negative integers, NaN and infinities, unknown
  names), plus the out-of-range values of `RANGES`."""
  if kind is int:
    by_type = st.one_of(st.integers(max_value=-1).map(lambda v: ('cli', str(v))),
                        _cli(['abc', '1.5']), _py([1.5, 'abc', True]))
  elif kind is float:
    by_type = st.one_of(_cli(['nan', 'inf', '-inf', 'abc']), _py(['abc', True]))
  elif kind is bool:
    by_type = st.one_of(_cli(['maybe']), _py(['yes', 2]))
  elif kind is str:
    by_type = _py([3, 1.5]) if field in FREE_TEXT else st.one_of(
        _cli(['no_such_name']), _py([3]))
  elif kind is tuple:
    by_type = st.one_of(_cli(['abc', '(-1,)']), _py(['abc', 3]))
  else:  # object: a number or one per member
    by_type = st.one_of(_cli(['abc', 'nan']), _py([float('inf')]))
  return st.one_of(by_type, RANGES[field]) if field in RANGES else by_type


def _context(field: str) -> dict:
  """Other fields that make `field` apply: the loss or model that has the option."""
  group, _, name = field.partition('.')
  if group == 'loss_options':
    return {'loss': next(n for n in losses.names() if name in losses.get(n).option_defaults())}
  if group == 'model_options':
    model = next(n for n in models.names() if name in models.get(n).option_defaults())
    return {'model': model} if model == 'mlp' else {'model': model, 'dataset': 'digits'}
  return {}


def _resolve_from_command_line(overrides: dict) -> None:
  """The CLI's parsing (`ganjax.main._parse_flags`, on fresh flags), then resolve_config."""
  argv = ['ganjax', '--config=configs/ring.py'] + [f'--config.{k}={v}'
                                                   for k, v in overrides.items()]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, flag_values=flag_values, sys_argv=argv)
  main._parse_flags(argv, flag_values)  # pylint: disable=protected-access
  resolve.resolve_config(flag_values['config'].value)


def _resolve_from_python(overrides: dict) -> None:
  """resolve_config of a config built from a dict (as from JSON: no field types enforced)."""
  tree = default.get_config().to_dict()
  for field, value in overrides.items():
    *path, leaf = field.split('.')
    node = tree
    for key in path:
      node = node[key]
    node[leaf] = value
  resolve.resolve_config(config_dict.ConfigDict(tree))


def _names(message: str, field: str) -> bool:
  return re.search(rf'(?:(?<![\w.])|(?<=--config\.)){re.escape(field)}(?!\w)',
                   message) is not None


@pytest.mark.filterwarnings('ignore:the load_module')  # ml_collections loading a config file
@pytest.mark.parametrize('field', sorted(FIELDS))
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_every_field_rejects_bad_values_in_one_line_naming_it(field, data):
  via, value = data.draw(invalid_values(field, FIELDS[field]), label='value')
  overrides = {**_context(field), field: value}
  try:
    if via == 'cli':
      _resolve_from_command_line(overrides)
    else:
      _resolve_from_python(overrides)
  except SystemExit as e:  # flag parsing: `error: --config.FIELD=VALUE: why`, exit status 1
    message = str(e.code)
    assert message.startswith(f'error: --config.{field}='), message
  except ValueError as e:  # resolve_config
    message = str(e)
  else:
    raise AssertionError(f'{field}={value!r} ({via}) was accepted')
  assert '\n' not in message and _names(message, field), (field, value, message)


@pytest.mark.parametrize('args,line', [
    (['--config.d_optimizer.learning_rate=abc'],  # parses (a number or a list): resolve_config
     "error: d_optimizer.learning_rate='abc': give a number, or one per population member (1)."),
    (['--config.batch_size=abc'],  # absl's flag parsing, in app.run
     "error: --config.batch_size=abc: invalid literal for int() with base 10: 'abc'"),
    (['--config.batch_sze=8'],  # without --config: the default file, parsed at import before
     'error: --config.batch_sze: no such config field; did you mean batch_size?'),
    (['--loss=hinge', '--config.loss_options.margin=-1'],
     'error: loss_options.margin=-1.0; valid: a positive finite number.'),
])
def test_the_command_line_reports_bad_values_in_one_line(tmp_path, args, line):
  proc = subprocess.run([sys.executable, '-m', 'ganjax.main', f'--workdir={tmp_path}/w'] + args,
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1] == line
  assert not os.path.exists(tmp_path / 'w')  # checked before the workdir is touched


@pytest.mark.parametrize('call,match', [
    (lambda: losses.hinge_discriminator([1.0], [0.0], margin=-1.0),
     r'^margin=-1.0; valid: a positive finite number\.$'),
    (lambda: losses.classic_discriminator([1.0], [0.0], label_smoothing=1.0),
     r'^label_smoothing=1.0; valid: a number in \[0, 1\)\.$'),
    (lambda: losses.relativistic_discriminator([1.0], [0.0], label_smoothing=-0.1),
     r'^label_smoothing=-0.1; valid: a number in \[0, 1\)'),
    (lambda: losses.least_squares_discriminator([1.0], [0.0], real_target=math.inf),
     r'^real_target=inf; valid: a finite number\.$'),
    (lambda: losses.least_squares_generator([1.0], target=math.nan), r'^target=nan'),
    (lambda: _penalty('wgan_gp', target=-1.0), r'^target=-1.0; valid: a finite number >= 0\.$'),
    (lambda: _penalty('dragan', scale=0.0), r'^scale=0.0; valid: a positive finite number\.$'),
    (lambda: _penalty('dragan', std=-1.0), r'^std=-1.0'),
    (lambda: _penalty('clip_weights', c=math.inf), r'^c=inf; valid: a positive finite'),
])
def test_losses_and_penalties_check_their_options_themselves(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def _penalty(name, **options):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ganjax import penalties  # pylint: disable=g-import-not-at-top
  x, key, critic = jnp.ones((2, 2)), jax.random.PRNGKey(0), lambda v: jnp.sum(v)
  if name == 'wgan_gp':
    return penalties.wgan_gp(critic, x, x, key, **options)
  if name == 'dragan':
    return penalties.dragan(critic, x, key, **options)
  return penalties.clip_weights({'w': x}, **options)


def test_a_traced_option_is_not_checked():
  import jax  # pylint: disable=g-import-not-at-top
  loss = jax.jit(lambda m: losses.hinge_discriminator(jax.numpy.ones(2), -jax.numpy.ones(2),
                                                      margin=m))
  assert float(loss(-1.0)) == 0.0  # what the formula gives; no check inside a trace
