"""SNGAN's standard CNN (Miyato et al. 2018), registered as the model family ``sngan_cnn``.

Importing this module registers it (``configs/sngan_cifar10.py`` does). The networks
follow pfnet-research/chainer-gan-lib (the SNGAN authors' library), ``common/net.py`` at
commit 7861e6c: ``DCGANGenerator(n_hidden=128, bottom_width=4, ch=512)`` and
``SNDCGANDiscriminator(bottom_width=4, ch=512)``, the pair its ``example.sh`` trains with
``--algorithm stdgan --architecture sndcgan``. With w = `width` (64) and b = size / 8::

  G: z (z_dim) -> dense b·b·8w -> BN -> ReLU -> (b, b, 8w)
     -> 3 x [4x4 stride-2 transposed conv (4w, 2w, w) -> BN -> ReLU]
     -> 3x3 stride-1 conv (image channels) -> tanh
  D: 3x3 s1 w -> 4x4 s2 2w -> 3x3 s1 2w -> 4x4 s2 4w -> 3x3 s1 4w -> 4x4 s2 8w
     -> 3x3 s1 8w, each conv (padding 1) followed by LeakyReLU(leaky_slope)
     -> dense 1; spectral normalisation (one power iteration per update) on every layer

Every kernel starts from N(0, 0.02²) and every bias from 0, as chainer-gan-lib's
``initialW=Normal(0.02)``. Known differences from that code: z ~ N(0, I) (ganjax's step
draws normal noise; chainer-gan-lib's generator defaults to U(-1, 1)); LeakyReLU slope
0.1 by default (chainer's ``F.leaky_relu`` default is 0.2; 0.1 is what the paper's
architecture table is commonly cited with, e.g. w86763777/pytorch-gan-collections'
SNGAN CNN; `leaky_slope` sets it); batch-norm epsilon 1e-5 (Chainer 2e-5), momentum 0.9
as Chainer's decay. On CPU, convolutions run as patch matmuls (`ganjax.models.conv2d`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax import models
from ganjax.parallel import AXIS

_INIT = nn.initializers.normal(0.02)


def _conv_fn(impl: str):
  """`ganjax.models.conv_as_matmul` where `impl` resolves to 'matmul', else None (lax)."""
  if impl not in models.CONV_IMPLS:
    raise ValueError(f'conv_impl={impl!r}; valid: {", ".join(models.CONV_IMPLS)}.')
  matmul = impl == 'matmul' or (impl == 'auto' and jax.default_backend() == 'cpu')
  return models.conv_as_matmul if matmul else None


class SNGANGenerator(nn.Module):
  """z -> dense -> (BN) ReLU -> 3 x [Upsample2x, (BN), ReLU] -> 3x3 conv -> tanh.

  Batch statistics are averaged over the mesh axis `axis_name` in training
  (``train=True``), running averages used with ``train=False``, as
  `ganjax.models.DCGANGenerator` does.
  """
  size: int = 32
  channels: int = 3
  width: int = 64
  batch_norm: bool = True
  conv_impl: str = 'auto'
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, train: bool = False):
    base, c = self.size // 8, 8 * self.width
    h = self._norm(nn.Dense(base * base * c, kernel_init=_INIT, dtype=self.dtype)(z), train)
    h = nn.relu(h).reshape(z.shape[0], base, base, c)
    for _ in range(3):
      c //= 2
      up = models.Upsample2x(c, conv_impl=self.conv_impl, dtype=self.dtype)  # N(0, 0.02) init
      h = nn.relu(self._norm(up(h), train))
    out = nn.Conv(self.channels, (3, 3), padding=((1, 1), (1, 1)), kernel_init=_INIT,
                  conv_general_dilated=_conv_fn(self.conv_impl), dtype=self.dtype)(h)
    return jnp.tanh(out).astype(jnp.float32)

  def _norm(self, h, train):
    return models.generator_norm(h, train, self.batch_norm, self.axis_name, self.dtype)


class SNGANDiscriminator(nn.Module):
  """Seven convolutions (3x3 stride 1 and 4x4 stride 2 in turn) with LeakyReLU, then a
  dense logit; spectral normalisation on every layer unless `spectral_norm` is False."""
  size: int = 32
  width: int = 64
  spectral_norm: bool = True
  leaky_slope: float = 0.1
  conv_impl: str = 'auto'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, update_stats: bool = False):
    w, conv_fn = self.width, _conv_fn(self.conv_impl)
    layers = ((w, 3, 1), (2 * w, 4, 2), (2 * w, 3, 1), (4 * w, 4, 2), (4 * w, 3, 1),
              (8 * w, 4, 2), (8 * w, 3, 1))
    h = x
    for features, kernel, stride in layers:
      conv = nn.Conv(features, (kernel, kernel), strides=stride, padding=((1, 1), (1, 1)),
                     kernel_init=_INIT, conv_general_dilated=conv_fn, dtype=self.dtype)
      h = nn.leaky_relu(self._maybe_sn(conv, h, update_stats), self.leaky_slope)
    h = h.reshape(h.shape[0], -1)
    logit = self._maybe_sn(nn.Dense(1, kernel_init=_INIT, dtype=self.dtype), h, update_stats)
    return logit.astype(jnp.float32)

  def _maybe_sn(self, layer, h, update_stats):
    if not self.spectral_norm:
      return layer(h)
    return nn.SpectralNorm(layer, dtype=self.dtype)(h, update_stats=update_stats)


def make_sngan_cnn(example_shape: tuple[int, ...], dtype: str = 'float32', *, z_dim: int = 128,
                   width: int = 64, spectral_norm: bool = True, batch_norm: bool = True,
                   leaky_slope: float = 0.1) -> models.ModelPair:
  """SNGAN's standard CNN pair for square HxWxC images with H divisible by 8 (CIFAR-10:
  32); `width` is D's first and G's last width (64 in SNGAN); `dtype` the compute dtype
  (parameters stay float32)."""
  if (len(example_shape) != 3 or example_shape[0] != example_shape[1]
      or example_shape[0] % 8):
    raise ValueError(f'model sngan_cnn needs square HxWxC images with H divisible by 8; got '
                     f'shape {example_shape}.')
  if not 0.0 <= leaky_slope < 1.0:
    raise ValueError(f'model_options.leaky_slope={leaky_slope!r}; valid: [0, 1).')
  size, channels = example_shape[0], example_shape[2]
  compute = models.compute_dtype(dtype)
  return models.ModelPair(
      SNGANGenerator(size, channels, int(width), bool(batch_norm), axis_name=AXIS,
                     dtype=compute),
      SNGANDiscriminator(size, int(width), bool(spectral_norm), float(leaky_slope),
                         dtype=compute),
      int(z_dim))


if 'sngan_cnn' not in models.names():  # a reload must not register it twice
  models.register('sngan_cnn', make_sngan_cnn)
