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
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp
from orbax.checkpoint.checkpoint_managers import save_decision_policy as sdp


class CheckpointMismatchError(ValueError):
  """The workdir's checkpoint was written for other shapes (another config)."""


class NoUsableCheckpointError(RuntimeError):
  """Checkpoints exist but none can be restored."""


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
    if every <= 0 or keep <= 0:
      raise ValueError(f'checkpoint_every ({every}) and keep_checkpoints ({keep}) must be '
                       'positive.')
    options = ocp.CheckpointManagerOptions(
        # A custom save policy must name the preemption policy to keep preemption saves.
        save_decision_policy=sdp.AnySavePolicy([
            sdp.FixedIntervalPolicy(every), sdp.PreemptionCheckpointingPolicy()]),
        preservation_policy=pp.LatestN(keep),
        enable_async_checkpointing=True,
        cleanup_tmp_directories=True,  # partial saves of a killed run
        create=True,
    )
    self.directory = os.path.abspath(directory)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=('state', 'meta'))

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

  def _read_meta(self, step: int) -> dict:
    path = os.path.join(self.directory, str(step), 'meta', 'metadata')
    if not os.path.exists(path):
      return dict(self.manager.restore(step, args=ocp.args.Composite(
          meta=ocp.args.JsonRestore()))['meta'])
    with open(path) as f:
      return json.load(f)

  def should_save(self, step: int) -> bool:
    return self.manager.should_save(step)

  def save(self, step: int, state: Any, meta: dict, force: bool = False) -> bool:
    """Starts an async save when the policy (or `force`) says so."""
    meta = dict(meta, shapes=shapes(state))
    return self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=force)

  def reached_preemption(self, step: int) -> bool:
    return self.manager.reached_preemption(step)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def abstract(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) to restore into."""
  return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)
