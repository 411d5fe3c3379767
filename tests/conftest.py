"""Shared helpers: tiny configs that train in seconds, and checkpoint readers."""

import os

import jax
import numpy as np
import pytest

from configs import ring


def tiny_config(**overrides):
  """The ring config shrunk to run a few steps in about a second."""
  c = ring.get_config()
  c.batch_size = 64
  c.steps = 20
  c.model_options.hidden = (32, 32)
  c.model_options.z_dim = 4
  c.log_every = 10
  c.eval_every = 20
  c.eval_samples = 500
  c.checkpoint_every = 10
  c.update_from_flattened_dict(overrides)
  return c


def load_state(workdir, step=None):
  """The `state` item of a checkpoint in `workdir` as numpy arrays."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  if step is None:
    step = max(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())
  path = os.path.join(ckpt_dir, str(step), 'state')
  checkpointer = ocp.StandardCheckpointer()
  # Restore onto this process's first device, whatever topology wrote it.
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree_util.tree_map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
      checkpointer.metadata(path).item_metadata.tree)
  return jax.tree_util.tree_map(np.asarray, checkpointer.restore(path, target))


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / 'run')
