"""The Checkpointer's save: off the step's path, a snapshot of the state, errors surfaced."""

import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import checkpoint


def _state(value: float) -> dict:
  return {'w': jnp.full((256, 256), value, jnp.float32), 'step': jnp.int32(value)}


def test_save_returns_before_orbax_and_snapshots_the_state(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ckpt'), every=5, keep=2)
  slow = ckpt.manager.save

  def slow_save(*args, **kwargs):
    time.sleep(0.5)
    return slow(*args, **kwargs)

  ckpt.manager.save = slow_save
  state = _state(1.0)
  t = time.perf_counter()
  assert ckpt.save(5, state, {'step': 5})
  blocked = time.perf_counter() - t
  # The caller donates the state to the next step right away: the save keeps its copy.
  bump = jax.jit(lambda s: jax.tree_util.tree_map(lambda x: x + 1, s), donate_argnums=0)
  state = bump(state)
  assert not ckpt.should_save(5) and not ckpt.save(5, state, {'step': 5})  # already queued
  t = time.perf_counter()
  ckpt.wait()
  assert time.perf_counter() - t > 0.3 > blocked
  assert ckpt.latest_step() == 5
  restored, meta = ckpt.restore(checkpoint.abstract(state))
  np.testing.assert_array_equal(restored['w'], np.ones((256, 256), np.float32))
  assert meta['step'] == 5 and meta['shapes'] == checkpoint.shapes(state)
  ckpt.close()


def test_a_failed_background_save_is_raised(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ckpt'), every=1, keep=2)

  def broken(*args, **kwargs):
    raise OSError('disk full')

  ckpt.manager.save = broken
  assert ckpt.save(1, _state(1.0), {'step': 1})
  with pytest.raises(RuntimeError, match=r'failed: OSError: disk full'):
    ckpt.wait()
  with pytest.raises(RuntimeError, match='disk full'):  # and again, until closed
    ckpt.save(2, _state(2.0), {'step': 2})
  with pytest.raises(RuntimeError, match='disk full'):
    ckpt.close()
  assert ckpt.latest_step() is None


def test_should_save_follows_the_interval_and_the_newest_checkpoint(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ckpt'), every=10, keep=2)
  assert [s for s in range(1, 31) if ckpt.should_save(s)] == [10, 20, 30]
  assert ckpt.save(20, _state(2.0), {'step': 20})
  assert not ckpt.should_save(10) and not ckpt.should_save(20) and ckpt.should_save(30)
  ckpt.close()
  again = checkpoint.Checkpointer(str(tmp_path / 'ckpt'), every=10, keep=2)
  assert again.latest_step() == 20 and not again.should_save(20) and again.should_save(30)
  again.close()


def test_exiting_without_close_is_clean_and_reports_the_lost_save(tmp_path):
  # Orbax starts no save once the interpreter is exiting; the saver thread must not abort the
  # process (as a daemon thread inside JAX would) and must say which step was lost.
  script = f'''
import time
import jax.numpy as jnp
from ganjax import checkpoint
ckpt = checkpoint.Checkpointer({str(tmp_path / 'ckpt')!r}, every=1)
save = ckpt.manager.save
ckpt.manager.save = lambda *a, **k: (time.sleep(1.0), save(*a, **k))[1]
ckpt.save(1, {{'w': jnp.ones(3)}}, {{'step': 1}})
'''
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run([sys.executable, '-c', script], cwd=root, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'Checkpoint step 1 was not saved: the program exited without' in proc.stderr
