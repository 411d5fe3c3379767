"""Orbax checkpoints: async saves, a preservation policy, preemption, resume.

A checkpoint holds two items: ``state`` (parameters, optimiser states, EMA
parameters, step, RNG keys: a pytree) and ``meta`` (JSON: the step, the data
iterator's position and the config's fingerprint). Saves are asynchronous and
atomic (Orbax writes to a temporary directory and renames it when complete),
so an interrupted save never hides the previous checkpoint.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp
from orbax.checkpoint.checkpoint_managers import save_decision_policy as sdp


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
        create=True,
    )
    self.directory = os.path.abspath(directory)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=('state', 'meta'))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def restore(self, abstract_state: Any) -> tuple[Any, dict] | None:
    """The latest checkpoint as (state, meta) with `abstract_state`'s shardings, or None."""
    step = self.manager.latest_step()
    if step is None:
      return None
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    return restored['state'], dict(restored['meta'])

  def should_save(self, step: int) -> bool:
    return self.manager.should_save(step)

  def save(self, step: int, state: Any, meta: dict, force: bool = False) -> bool:
    """Starts an async save when the policy (or `force`) says so."""
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
