"""Shared helpers: tiny configs that train in seconds, and checkpoint readers."""

import os

# Determinism the README promises (bitwise resume, the feature extractor) must hold on GPUs
# too: ask XLA:GPU for deterministic kernels before JAX starts a backend, as `ganjax.main`
# does (see its `_request_deterministic_gpu_ops`). Subprocesses inherit it; the CPU accepts
# and ignores the flag. A setting already in XLA_FLAGS is kept.
if 'xla_gpu_deterministic_ops' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '')
                             + ' --xla_gpu_deterministic_ops=true').strip()

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
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


def on_one_cpu_device() -> bool:
  """Whether this process runs JAX on exactly one CPU device.

  Equivalence tests compare against fake CPU devices in a `JAX_PLATFORMS=cpu` subprocess;
  their 1-device reference must run on the CPU too (XLA:GPU rounds differently: TF32
  matmuls, other exp/log). Such a process can be the reference itself; elsewhere (GPU,
  TPU) the reference runs in a CPU-pinned subprocess.
  """
  return jax.default_backend() == 'cpu' and jax.device_count() == 1


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / 'run')


@pytest.fixture
def highest_matmul_precision():
  """Full float32 matmuls, whatever the platform's default (TF32 on GPUs): for tests whose
  claim is about arithmetic (two computations of one function agree)."""
  with jax.default_matmul_precision('highest'):
    yield
