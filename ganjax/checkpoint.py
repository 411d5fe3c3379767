"""Orbax checkpoints: async saves, a preservation policy, preemption, resume.

A checkpoint holds two items: ``state`` (parameters, optimiser states, EMA
parameters, step, RNG keys: a pytree) and ``meta`` (JSON: the step, the data
iterator's position, the shapes of the state and the config). Saves are
asynchronous and atomic: Orbax writes ``<step>.orbax-checkpoint-tmp`` and
renames it when complete, so an interrupted save never hides the previous
checkpoint, and leftover temporary directories are removed on the next start.

Restoring walks back from the newest checkpoint: one that cannot be read
(truncated or deleted files) is reported and skipped; a checkpoint written by
a different config (other shapes) is an error that names the difference.

`Checkpointer.save` does not wait for Orbax: it copies the state on the device
(one jitted call, so the next step may donate the original buffers) and hands
the copy to a saver thread that runs Orbax's save, whose synchronous part
(threads, device-to-host transfers) took 55-90 ms per save in the benchmarks:
hundreds of steps of a small model. `wait` returns once every queued save is
committed. An error in the saver thread is raised by every later `save`, `wait`
and `close`, and no later save is attempted. With several processes, Orbax's
save synchronises the processes with collectives, which must be issued in the
same order everywhere, so there `save` calls Orbax on the calling thread (its
writes still finish in the background).

A full disk is `DiskFullError`, one line naming the step, the directory, the
space the state needs and the space free: `save` checks the free space before
queuing a save (the state's byte size is its estimate), and an ENOSPC from the
write itself (Orbax reports ``RESOURCE_EXHAUSTED``) is translated. Orbax
commits a checkpoint only once it is complete, so the last complete one is
kept; `close` removes the failed save's temporary directory.
"""

from __future__ import annotations

import errno
import json
import logging as py_logging
import os
import queue
import re
import shutil
import sys
import threading
import traceback
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp


class CheckpointMismatchError(ValueError):
  """The workdir's checkpoint was written for other shapes (another config)."""


class NoUsableCheckpointError(RuntimeError):
  """Checkpoints exist but none can be restored."""


class DiskFullError(OSError):
  """A checkpoint could not be written: no space left in its directory."""


def meta_path(directory: str, step: int) -> str:
  """Where Orbax writes the JSON ``meta`` of the checkpoint at `step` in `directory`."""
  return os.path.join(directory, str(step), 'meta', 'metadata')


def free_bytes(directory: str) -> int:
  """Free space in `directory`'s filesystem (the probe tests replace)."""
  return shutil.disk_usage(directory).free


def is_disk_full(e: BaseException | None) -> bool:
  """Whether `e` (or an exception it was raised from) is ENOSPC, as Python or TensorStore
  (``RESOURCE_EXHAUSTED ... [os_error_code='28']``) reports it."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
      return True
    text = str(e)
    if 'No space left on device' in text or (
        'RESOURCE_EXHAUSTED' in text and f"os_error_code='{errno.ENOSPC}'" in text):
      return True
    e = e.__cause__ or e.__context__
  return False


def _size(n: float) -> str:
  for unit in ('bytes', 'KB', 'MB', 'GB'):
    if n < 1000 or unit == 'GB':
      return f'{n:.0f} {unit}' if unit == 'bytes' else f'{n:.3g} {unit}'
    n /= 1000
  return f'{n:.3g} TB'


def shapes(tree: Any) -> dict[str, str]:
  """``{'path': 'dtype[shape]'}`` for every leaf: the state's fingerprint."""
  return {jax.tree_util.keystr(path): f'{leaf.dtype}{list(leaf.shape)}'
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _describe_mismatch(saved: dict[str, str], current: dict[str, str], limit: int = 4) -> str:
  differ = [k for k in set(saved) | set(current) if saved.get(k) != current.get(k)]
  differ.sort(key=lambda k: ('params' not in k, k))  # parameters first, optimiser state after
  lines = [f'{k}: checkpoint {saved.get(k, "absent")}, config {current.get(k, "absent")}'
           for k in differ]
  more = f' (and {len(lines) - limit} more)' if len(lines) > limit else ''
  return '; '.join(lines[:limit]) + more


class Checkpointer:
  """Saves every `every` steps (and on preemption), keeps the latest `keep`."""

  def __init__(self, directory: str, every: int, keep: int = 3):
    _quiet_failed_write_logs()
    if every <= 0 or keep <= 0:
      raise ValueError(f'checkpoint_every ({every}) and keep_checkpoints ({keep}) must be '
                       'positive.')
    options = ocp.CheckpointManagerOptions(
        # When to save is decided here (`should_save`, preemption by the loop); every save
        # reaches Orbax with force=True, so no Orbax save policy is configured.
        preservation_policy=pp.LatestN(keep),
        enable_async_checkpointing=True,
        cleanup_tmp_directories=True,  # partial saves of a killed run
        create=True,
    )
    self.directory = os.path.abspath(directory)
    self.every = every
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=('state', 'meta'))
    self._last_saved = self.manager.latest_step()
    self._copy = jax.jit(lambda tree: jax.tree_util.tree_map(jnp.copy, tree))
    # One save waiting behind the one being written: a slower disk makes `save` wait
    # (back-pressure) instead of piling up copies of the state on the device.
    self._queue: queue.Queue = queue.Queue(maxsize=1)
    self._error: BaseException | None = None
    self._error_step: int | None = None   # the step being saved when an error surfaced
    self._handed: list[int] = []           # the newest steps handed to Orbax
    self._state_bytes = 0                  # the newest saved state's size (a save's estimate)
    self._thread: threading.Thread | None = None
    self._threaded = jax.process_count() == 1

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def restore(self, abstract_state: Any) -> tuple[Any, dict] | None:
    """The newest readable checkpoint as (state, meta), or None if there is none.

    Raises `CheckpointMismatchError` when the newest readable checkpoint has
    other shapes than `abstract_state`, and `NoUsableCheckpointError` when
    checkpoints exist but none can be read.
    """
    steps = sorted(self.manager.all_steps(), reverse=True)
    expected = shapes(abstract_state)
    failures = []
    for step in steps:
      try:
        meta = self._read_meta(step)
      except Exception as e:  # pylint: disable=broad-except
        failures.append(f'step {step}: {type(e).__name__}: {e}')
        logging.warning('Checkpoint %d in %s is unreadable (%s); trying an older one.',
                        step, self.directory, e)
        continue
      if meta.get('shapes') != expected:
        raise CheckpointMismatchError(
            f'the checkpoint at step {step} in {self.directory} was written by a different '
            f'config: {_describe_mismatch(meta.get("shapes", {}), expected)}. Use another '
            '--workdir, or the config that wrote it.')
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))
      except Exception as e:  # pylint: disable=broad-except
        failures.append(f'step {step}: {type(e).__name__}: {str(e)[:200]}')
        logging.warning('Checkpoint %d in %s is corrupted (%s); falling back to an older one.',
                        step, self.directory, type(e).__name__)
        continue
      if failures:
        logging.warning('Restored step %d after skipping %d unusable checkpoint(s).', step,
                        len(failures))
      return restored['state'], meta
    if failures:
      raise NoUsableCheckpointError(
          f'no usable checkpoint in {self.directory}: ' + ' | '.join(failures) +
          '. Move that directory away to start afresh.')
    return None

  def steps(self) -> list[int]:
    """The steps of the kept checkpoints, oldest first."""
    return sorted(self.manager.all_steps())

  def restore_at(self, step: int, abstract_state: Any) -> Any:
    """The state saved at `step` (one of `steps`); `CheckpointMismatchError` when it has
    other shapes than `abstract_state`."""
    saved, expected = self._read_meta(step).get('shapes'), shapes(abstract_state)
    if saved != expected:
      raise CheckpointMismatchError(
          f'the checkpoint at step {step} in {self.directory} was written by a different '
          f'config: {_describe_mismatch(saved or {}, expected)}.')
    return self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))['state']

  def _read_meta(self, step: int) -> dict:
    path = meta_path(self.directory, step)
    if not os.path.exists(path):
      return dict(self.manager.restore(step, args=ocp.args.Composite(
          meta=ocp.args.JsonRestore()))['meta'])
    with open(path) as f:
      return json.load(f)

  def should_save(self, step: int) -> bool:
    """Every `every` steps, after the newest saved or queued step (preemption: see
    `reached_preemption`). Decided here, without Orbax, so it never waits on a save."""
    return step % self.every == 0 and (self._last_saved is None or step > self._last_saved)

  def save(self, step: int, state: Any, meta: dict, force: bool = False) -> bool:
    """Queues a save of `state` when the policy (or `force`) says so; returns whether.

    Blocks only for dispatching an on-device copy of `state`; Orbax's save runs
    on the saver thread.
    """
    self._raise_saver_error()
    if not (force or self.should_save(step)):
      return False
    self._check_space(step, state)
    self._last_saved = step
    if not self._threaded:
      try:
        self._orbax_save(step, state, meta)
      except Exception as e:  # pylint: disable=broad-except
        self._error, self._error_step = e, step
        self._raise_saver_error()
      return True
    if self._thread is None:
      # Not a daemon, so the interpreter never exits while it is inside JAX or Orbax (which
      # aborts the process). Orbax starts no save once the interpreter is exiting: without
      # close(), a save still queued then fails and is logged.
      self._thread = threading.Thread(target=self._saver, name='ganjax-checkpoint-saver')
      self._thread.start()
    self._queue.put((step, self._copy(state), meta))
    return True

  def _saver(self) -> None:
    while True:
      try:
        item = self._queue.get(timeout=0.5)
      except queue.Empty:
        if threading.main_thread().is_alive():
          continue
        return  # the program is exiting without close(), and nothing is queued
      try:
        if item is None:
          return
        step, state, meta = item
        if self._error is None:  # after a failure, later saves are dropped (and reported)
          self._orbax_save(step, state, meta)
      except BaseException as e:  # pylint: disable=broad-except
        self._error, self._error_step = e, step
        if not threading.main_thread().is_alive():
          logging.error('Checkpoint step %d was not saved: the program exited without '
                        'Checkpointer.close() (%s: %s).', step, type(e).__name__, e)
      finally:
        self._queue.task_done()

  def _orbax_save(self, step: int, state: Any, meta: dict) -> None:
    self._handed = self._handed[-3:] + [step]
    meta = dict(meta, shapes=shapes(state))
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def _check_space(self, step: int, state: Any) -> None:
    """Raises `DiskFullError` if a save needs more than the directory's free space: the
    state's bytes, or what the newest complete checkpoint takes on disk if that is more
    (many small files: 30 KB of arrays took 184 KB on a tmpfs)."""
    self._state_bytes = max(sum(int(getattr(x, 'nbytes', 0))
                                for x in jax.tree_util.tree_leaves(state)),
                            self._disk_usage(self.manager.latest_step()))
    free = free_bytes(self.directory)
    if free < self._state_bytes:
      raise self._disk_full(step, free)

  def _disk_usage(self, step: int | None) -> int:
    """Bytes that checkpoint `step`'s files occupy (0 if it is absent or still being written)."""
    total = 0
    for root, _, files in os.walk(os.path.join(self.directory, str(step))):
      for name in files:
        try:
          total += os.stat(os.path.join(root, name)).st_blocks * 512
        except OSError:
          pass
    return total

  def _disk_full(self, step: int | None, free: int | None = None) -> DiskFullError:
    if free is None:
      free = free_bytes(self.directory)
    last = self.manager.latest_step()
    error = DiskFullError(
        f'checkpoint step {step} was not saved: no space left in {self.directory} (the state '
        f'needs about {_size(self._state_bytes)}, {_size(free)} free); the last complete '
        f'checkpoint ({"none" if last is None else f"step {last}"}) is kept: free space and '
        'rerun to resume from it.')
    error.errno = errno.ENOSPC
    return error

  def _raise_saver_error(self) -> None:
    """Raises (again at every later call) the saver thread's first error."""
    e = self._error
    if e is not None and is_disk_full(e):
      # Orbax's background write of a save fails at a later call: the failed step is the
      # oldest one handed to Orbax that is not complete on disk.
      failed = [s for s in self._handed
                if not os.path.isdir(os.path.join(self.directory, str(s)))]
      if jax.process_count() == 1:
        self._remove_partial_saves()  # the free space the message states is then real
      self._state_bytes = max(self._state_bytes, self._disk_usage(self.manager.latest_step()))
      raise self._disk_full(min(failed) if failed else self._error_step) from e
    if e is not None:
      raise RuntimeError(f'saving a checkpoint in {self.directory} failed: '
                         f'{type(e).__name__}: {e}') from e

  def reached_preemption(self, step: int) -> bool:
    return self.manager.reached_preemption(step)

  def wait(self) -> None:
    """Returns when every queued save is committed; raises a saver thread's error."""
    self._queue.join()
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      if self._error is None:  # Orbax's background write of the newest save failed
        self._error, self._error_step = e, self._last_saved
    self._raise_saver_error()

  def close(self) -> None:
    try:
      self.wait()
    finally:
      if self._thread is not None:
        self._queue.put(None)
        self._thread.join()
        self._thread = None
      try:
        self.manager.close()
      except Exception:  # pylint: disable=broad-except
        if self._error is None:
          raise  # otherwise Orbax repeats the saver's error, which wait() is raising
      finally:
        if is_disk_full(self._error) and jax.process_count() == 1:
          self._remove_partial_saves()

  def _remove_partial_saves(self) -> None:
    """Removes failed saves' temporary directories (the next start would), freeing space."""
    for name in os.listdir(self.directory):
      if name.endswith(ocp.utils.TMP_DIR_SUFFIX):
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)


def abstract(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) to restore into."""
  return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)


def _quiet_failed_write_logs() -> None:
  """After a failed write (a full disk), Orbax leaves debris that would print tracebacks
  around ganjax's one-line error. This drops exactly that debris (once per process):
  - asyncio's "Task exception was never retrieved" (or "_GatheringFuture exception ...")
    records for Orbax's unfinished write tasks, when their exception is the full disk;
  - "RuntimeError: Event loop is closed", raised when TensorStore's native threads finish a
    write and call `call_soon_threadsafe` on the loop Orbax closed after the failure: they
    report it through `sys.unraisablehook` with no object (in about half the runs);
  - the warning that Orbax's ``write_fragment`` coroutine was never awaited, at exit.
  Any other record, unraisable exception or warning still reaches the previous handler."""
  warnings.filterwarnings('ignore', category=RuntimeWarning,  # replaces an equal filter
                          message=r"coroutine '[\w.<>]*write_fragment' was never awaited")
  asyncio_logger = py_logging.getLogger('asyncio')
  if any(getattr(f, 'ganjax', False) for f in asyncio_logger.filters):
    return

  def keep(record: py_logging.LogRecord) -> bool:
    text = record.getMessage() + str(record.exc_info[1] if record.exc_info else '')
    return not (re.match(r'\w+ exception was never retrieved', text)
                and 'No space left on device' in text)
  keep.ganjax = True
  asyncio_logger.addFilter(keep)
  sys.unraisablehook = without_closed_loop_callbacks(sys.unraisablehook)


def without_closed_loop_callbacks(hook: Any) -> Any:
  """`hook` (a `sys.unraisablehook`) minus the unraisable exceptions of native threads that
  call `call_soon_threadsafe` on a closed asyncio loop (see `_quiet_failed_write_logs`)."""
  def unraisable(args: Any) -> None:
    frames = traceback.extract_tb(args.exc_traceback)[-2:]
    if not (args.object is None and isinstance(args.exc_value, RuntimeError)
            and str(args.exc_value) == 'Event loop is closed'
            and [f.name for f in frames] == ['call_soon_threadsafe', '_check_closed']
            and all(f.filename.endswith(os.path.join('asyncio', 'base_events.py'))
                    for f in frames)):
      hook(args)
  return unraisable
