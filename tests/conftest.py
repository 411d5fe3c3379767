"""Shared helpers: tiny configs that train in seconds, and checkpoint readers."""

import os
import shutil
import tempfile

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


_session_cache = []


def pytest_configure(config):  # pylint: disable=unused-argument
  """Many tests compile the same programs (the tiny step, the evaluator's metrics): JAX's
  persistent compilation cache, in a folder of this test session only (empty at its start,
  removed at its end), compiles each once for this process and its subprocesses. A cache
  folder the user has set is used as it is."""
  if os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return
  _session_cache.append(tempfile.mkdtemp(prefix='ganjax-tests-xla-cache-'))
  for name, value in (('jax_compilation_cache_dir', _session_cache[0]),
                      ('jax_persistent_cache_min_compile_time_secs', 0),
                      ('jax_persistent_cache_min_entry_size_bytes', -1)):
    os.environ[name.upper()] = str(value)  # for subprocesses
    jax.config.update(name, value)


def pytest_unconfigure(config):  # pylint: disable=unused-argument
  for path in _session_cache:
    shutil.rmtree(path, ignore_errors=True)


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


def member_parts(cfg):
  """``(per-device step pieces, one member's initial state, model pair)`` of a 2D config."""
  from ganjax import resolve, step  # pylint: disable=g-import-not-at-top
  run = resolve.resolve_config(cfg)
  pair = run.model.make((2,), 'float32', **run.model_options)
  state = step.init_members(pair, run.step, (2,), run.seeds, run.g_learning_rate,
                            run.d_learning_rate)
  m = jax.tree_util.tree_map(lambda x: x[0], state['members'])
  return step.make_per_device_step(pair, run.step), m, pair


def in_data_axis(fn):
  """``fn()`` inside a one-device `data` axis (what shard_map binds in the step)."""
  from ganjax import parallel  # pylint: disable=g-import-not-at-top
  out = jax.vmap(lambda _: fn(), axis_name=parallel.AXIS)(jax.numpy.zeros(1))
  return jax.tree_util.tree_map(lambda a: a[0], out)


def g_objective_value(parts, m, g_params, z, real):
  """G's objective against member `m`'s D."""
  d = (m['d_params'], m['d_opt'], m['d_stats'])
  return in_data_axis(lambda: parts.g_objective(g_params, m['g_stats'], d, z, real,
                                                jax.random.PRNGKey(1), 0.0)[0])


def d_update(parts, m, real, fake):
  """Member `m`'s discriminator ``(params, opt_state, stats)`` after one update on `real`
  and `fake`."""
  d = (m['d_params'], m['d_opt'], m['d_stats'])
  return in_data_axis(lambda: parts.d_step(*d, real, fake, jax.random.PRNGKey(2), 0.0)[:3])


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
