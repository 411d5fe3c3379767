"""Models: both upsampling paths (phase matmuls, phase convolution) equal a transposed
convolution; shapes; options."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import models


@pytest.fixture
def highest_precision():
  """Full float32 products: these tests compare functions, not a GPU's TF32 rounding."""
  with jax.default_matmul_precision('highest'):
    yield


def _conv_transpose_reference(x, w):
  """PyTorch's ConvTranspose2d(k=4, s=2, p=1): out[2j - 1 + k] += in[j] · w[k]."""
  n, h, wd, _ = x.shape
  out = np.zeros((n, 2 * h + 2, 2 * wd + 2, w.shape[-1]))
  for j in range(h):
    for i in range(wd):
      for ky in range(4):
        for kx in range(4):
          out[:, 2 * j + ky, 2 * i + kx] += x[:, j, i] @ w[ky, kx]
  return out[:, 1:-1, 1:-1]


@pytest.mark.parametrize('impl', ['matmul', 'lax'])  # the CPU's path, the accelerators'
def test_upsample2x_equals_transposed_convolution(impl, highest_precision):
  x = np.random.RandomState(0).randn(2, 5, 6, 3).astype(np.float32)
  layer = models.Upsample2x(4, use_bias=False, conv_impl=impl)
  variables = layer.init(jax.random.PRNGKey(0), x)
  kernel = np.asarray(variables['params']['kernel'])
  assert kernel.shape == (4, 4, 3, 4)  # the parameters of a 4x4 transposed convolution
  np.testing.assert_allclose(layer.apply(variables, x), _conv_transpose_reference(x, kernel),
                             atol=1e-5)


@pytest.mark.parametrize('impl', ['matmul', 'lax'])
def test_upsample2x_matches_flax_conv_transpose_gradient(impl, highest_precision):
  # Same function => same input gradient as Flax's own transposed convolution with the
  # kernel flipped (lax.conv_transpose correlates, PyTorch's definition scatters).
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 3))
  layer = models.Upsample2x(5, use_bias=False, conv_impl=impl)
  variables = layer.init(jax.random.PRNGKey(2), x)
  kernel = variables['params']['kernel']
  ref = lambda x: jax.lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
                                         dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  ours = lambda x: layer.apply(variables, x)
  np.testing.assert_allclose(ours(x), ref(x), atol=1e-5)
  g = jax.random.normal(jax.random.PRNGKey(3), ours(x).shape)
  np.testing.assert_allclose(jax.vjp(ours, x)[1](g)[0], jax.vjp(ref, x)[1](g)[0], atol=1e-4)


@pytest.mark.parametrize('size,channels', [(8, 1), (28, 1), (32, 3), (64, 3)])
def test_dcgan_shapes(size, channels):
  """Shapes by tracing (`jax.eval_shape`: XLA:CPU compiles each size in 5-20 s);
  values, computed, for the smallest."""
  pair = models.get('dcgan').build((size, size, channels), {'width': 8, 'z_dim': 7})
  z = jax.random.normal(jax.random.PRNGKey(2), (3, 7))
  run = jax.eval_shape if size > 8 else lambda f, *a: jax.jit(f)(*a)
  g_vars = run(pair.generator.init, jax.random.PRNGKey(0), z)
  images = run(pair.generator.apply, g_vars, z)
  assert images.shape == (3, size, size, channels)
  d_vars = run(pair.discriminator.init, jax.random.PRNGKey(1), images)
  assert run(pair.discriminator.apply, d_vars, images).shape == (3, 1)
  if size == 8:
    assert 0 < float(jnp.max(jnp.abs(images))) <= 1.0  # tanh images


def test_spectral_norm_discriminator_trains(tmp_path):
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  from ganjax import train  # pylint: disable=g-import-not-at-top
  cfg = tiny_config(dataset='digits', model='dcgan', steps=4, log_every=2, eval_every=4,
                    checkpoint_every=4, eval_samples=64, image_metrics=False,
                    data_dir=str(tmp_path / 'tfds'),
                    **{'model_options.hidden': None, 'model_options.width': 8,
                       'model_options.spectral_norm': True})
  summary = train.train_and_evaluate(cfg, str(tmp_path / 'run'))
  assert summary['step'] == 4 and np.isfinite(summary['d_loss'])
  pair = models.get('dcgan').build((8, 8, 1), {'width': 8, 'spectral_norm': True})
  variables = pair.discriminator.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))
  assert 'batch_stats' in variables  # the power-iteration vectors


def test_model_errors():
  with pytest.raises(ValueError, match='valid: mlp, dcgan'):
    models.get('vit')
  with pytest.raises(ValueError, match='valid: 8, 28, 32, 64'):
    models.get('dcgan').build((16, 16, 3))
  with pytest.raises(ValueError, match='vector data'):
    models.get('mlp').build((8, 8, 1))
  with pytest.raises(ValueError, match=r"\['width'\] do not apply to model mlp"):
    models.get('mlp').build((2,), {'width': 3})


def test_the_native_transposed_convolution_of_the_benchmark_is_the_same_layer(highest_precision):
  # benchmarks/upsample_ab.py times this form against Upsample2x: it must be the same function.
  from benchmarks.upsample_ab import NativeUpsample2x  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.PRNGKey(4), (2, 5, 6, 3))
  layer = models.Upsample2x(4, conv_impl='lax')
  variables = layer.init(jax.random.PRNGKey(5), x)
  np.testing.assert_allclose(NativeUpsample2x(4, conv_impl='lax').apply(variables, x),
                             layer.apply(variables, x), atol=1e-6)
