"""Device mesh, the shard_map wrapper and population helpers.

The train step is written per device (pmap semantics: explicit ``lax.pmean``
over the mesh axis ``data``) and compiled once with
``jax.jit(jax.shard_map(...))`` on a 1-D mesh of all devices. Parameters are
replicated, batches sharded along their example axis.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = 'data'
REPLICATED = P()
BATCH = P(None, AXIS)  # (n_dis, examples, ...): shard the example axis
STEPS_BATCH = P(None, None, AXIS)  # (steps, n_dis, examples, ...): several steps' batches


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh over all devices (of all processes), axis name ``data``."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (AXIS,))


def check_batch(batch_size: int, mesh: Mesh, pack: int = 1, g_bn_groups: int = 1
                ) -> None:
  """Raises a ValueError unless the global batch splits evenly over devices, into shares
  that form whole packs of `pack` examples and `g_bn_groups` equal groups."""
  n = mesh.devices.size
  for name, k in (('pack', pack), ('g_bn_groups', g_bn_groups)):
    if batch_size <= 0 or batch_size % (n * k):
      raise ValueError(f'batch_size {batch_size} does not divide by the {n} devices of the '
                       f'mesh' + (f' times {name}={k}' if k > 1 else '') +
                       f'; use a multiple of {n * k}.')


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places host values (the same on every process) on every device."""
  return jax.device_put(tree, NamedSharding(mesh, REPLICATED))


def shard_batch(local_batch: np.ndarray, mesh: Mesh, steps_axis: bool = False) -> jax.Array:
  """Assembles each process's (n_dis, local_examples, ...) into one global array; with
  `steps_axis`, (steps, n_dis, local_examples, ...)."""
  spec = STEPS_BATCH if steps_axis else BATCH
  return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), local_batch)


def batch_sharder(mesh: Mesh, steps_per_call: int) -> Callable[[np.ndarray], jax.Array]:
  """`shard_batch` for what `Dataset.call_batch` returns with `steps_per_call` steps."""
  return lambda local_batch: shard_batch(local_batch, mesh, steps_axis=steps_per_call > 1)


def to_host(tree: Any) -> Any:
  """Replicated global arrays -> numpy (reads this process's first shard)."""
  return jax.tree_util.tree_map(
      lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, tree)


def data_parallel(per_device: Callable, mesh: Mesh, in_specs: tuple, out_specs: Any,
                  donate_argnums: tuple[int, ...] = ()) -> Callable:
  """``jit(shard_map(per_device))``: one compiled program for the whole mesh."""
  # check_vma=False gives pmap semantics: `jax.grad` of a replicated parameter returns this
  # device's gradient, and the step averages it with an explicit `lax.pmean`. (With
  # check_vma=True, JAX would insert a psum into the gradient of every replicated input
  # itself, and an explicit pmean on top would be silently wrong by the device count.)
  mapped = jax.shard_map(per_device, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                         check_vma=False)
  return jax.jit(mapped, donate_argnums=donate_argnums)


def per_member(value: Any, population: int, name: str) -> np.ndarray:
  """A scalar or a list of `population` numbers -> float32 array (population,)."""
  try:
    with np.errstate(over='ignore'):  # beyond float32: inf, which the callers reject
      values = np.atleast_1d(np.asarray(value, np.float32))
  except (TypeError, ValueError):
    raise ValueError(f'{name}={value!r}: give a number, or one per population member '
                     f'({population}).') from None
  if values.ndim != 1 or len(values) not in (1, population):
    raise ValueError(f'{name}={value!r}: give one number or one per population member '
                     f'({population}).')
  return np.broadcast_to(values, (population,)).copy()


def member(tree: Any, i: int) -> Any:
  """Member `i` of a population-stacked pytree."""
  return jax.tree_util.tree_map(lambda x: x[i], tree)
