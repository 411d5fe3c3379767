"""Generators and discriminators (Flax Linen).

* ``mlp``: MLP generator/discriminator for 2D data (VEEGAN/PacGAN-sized).
* ``dcgan``: DCGAN-style convolutional pair for 8x8, 28x28, 32x32 and 64x64
  images (NHWC in [-1, 1]), with optional spectral normalisation in the
  discriminator. The discriminator has no batch norm: it would couple the
  examples of a batch and break per-example gradient penalties.

Generator upsampling uses `Upsample2x`, a transposed convolution (4x4 kernel,
stride 2, PyTorch's ``ConvTranspose2d(k=4, s=2, p=1)``) computed by phase
decomposition: one stride-1 3x3 convolution producing the four output phases,
then depth-to-space. It has the same parameters and outputs as the transposed
convolution, but XLA compiles its gradient to plain convolutions, which on CPU
are several times faster than the gradient of a strided ``ConvTranspose``.

On CPU every convolution (`conv2d`) runs as one matmul of the input's patches
with the kernel (``conv_impl='matmul'``, the same sum): XLA:CPU runs a
convolution's gradient 30-100x slower inside a loop body (a ``lax.scan`` or
``lax.map``, as in ``steps_per_call`` and population chunks) and under
``vmap`` over a population (grouped convolutions), while matmuls stay fast in
both (benchmarks/NOTES.md).
Other backends use ``lax.conv_general_dilated`` (``conv_impl='lax'``).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganjax.parallel import AXIS
from ganjax.registry import Registry

# ------------------------------------------------------------- convolution --

CONV_IMPLS = ('auto', 'lax', 'matmul')


def _resolve_impl(impl: str) -> str:
  if impl not in CONV_IMPLS:
    raise ValueError(f'conv_impl={impl!r}; valid: {", ".join(CONV_IMPLS)}.')
  if impl == 'auto':
    return 'matmul' if jax.default_backend() == 'cpu' else 'lax'
  return impl


def conv_as_matmul(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                   dimension_numbers=None, feature_group_count=1, precision=None):
  """NHWC x HWIO convolution as (N·Ho·Wo, kh·kw·Cin) patches @ (kh·kw·Cin, Cout).

  Takes ``lax.conv_general_dilated``'s arguments (so ``nn.Conv`` can use it) but
  supports only explicit (low, high) padding, no dilation and no groups.
  """
  del dimension_numbers  # NHWC/HWIO, checked by the shapes below
  if (feature_group_count != 1 or isinstance(padding, str)
      or any(d != 1 for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ()))):
    raise NotImplementedError('conv_as_matmul: explicit padding, no dilation, no groups.')
  kh, kw, cin, cout = rhs.shape
  n, h, w, c = lhs.shape
  if c != cin:
    raise ValueError(f'input has {c} channels, kernel expects {cin} (NHWC x HWIO).')
  (top, bottom), (left, right) = padding
  sh, sw = window_strides
  ho, wo = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
  x = jnp.pad(lhs, ((0, 0), (top, bottom), (left, right), (0, 0)))
  # Patch column (i·kw + j)·Cin + c is input pixel (sh·y + i, sw·x + j), channel c: the
  # row-major flattening of an HWIO kernel's first three axes.
  patches = jnp.concatenate(
      [jax.lax.slice(x, (0, i, j, 0), (n, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, cin),
                     (1, sh, sw, 1)) for i in range(kh) for j in range(kw)], axis=-1)
  y = jnp.dot(patches.reshape(n * ho * wo, kh * kw * cin), rhs.reshape(kh * kw * cin, cout),
              precision=precision)
  return y.reshape(n, ho, wo, cout)


def conv2d(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
           padding: Sequence[tuple[int, int]], impl: str = 'auto') -> jax.Array:
  """NHWC x HWIO convolution with explicit padding, by `impl` (see CONV_IMPLS)."""
  if _resolve_impl(impl) == 'matmul':
    return conv_as_matmul(x, kernel, strides, padding)
  return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


# --------------------------------------------------------------- upsampling --

# For output phase a (0: even rows, 1: odd rows) and 3-tap input window
# offsets (-1, 0, +1), the 4-tap transposed-convolution kernel index that
# contributes (out[2i+a] = Σ in[j]·w[k] with 2j - 1 + k = 2i + a), or -1.
_PHASE_TAPS = np.array([[3, 1, -1],    # a = 0: in[i-1]·w3 + in[i]·w1
                        [-1, 2, 0]])   # a = 1: in[i]·w2 + in[i+1]·w0


def _phase_kernel(kernel: jax.Array) -> jax.Array:
  """(4, 4, Cin, Cout) transposed-conv kernel -> (3, 3, Cin, 4·Cout) conv kernel.

  Output channel index is ``(a·2 + b)·Cout + c`` for phase (a, b).
  """
  k4 = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index 4 is a zero tap
  taps = np.where(_PHASE_TAPS < 0, 4, _PHASE_TAPS)         # (phase, window)
  # rows[a, dy] and cols[b, dx] select kernel taps; gather a (2,3,2,3) grid.
  k = k4[taps[:, :, None, None], taps[None, None, :, :]]  # (a, dy, b, dx, Cin, Cout)
  k = jnp.transpose(k, (1, 3, 4, 0, 2, 5))                 # (dy, dx, Cin, a, b, Cout)
  return k.reshape(3, 3, kernel.shape[2], 4 * kernel.shape[3])


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
  """(N, H, W, b·b·C) -> (N, b·H, b·W, C), channel index (a·b + c)·C + ch."""
  n, h, w, c = x.shape
  c_out = c // (block * block)
  x = x.reshape(n, h, w, block, block, c_out)
  x = jnp.transpose(x, (0, 1, 3, 2, 4, 5))
  return x.reshape(n, h * block, w * block, c_out)


def _phase_matmuls(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The 3x3 phase convolution with only its non-zero taps: 4 matmuls of 2x2 patches.

  Each output phase (a, b) reads a 2x2 input window, so this does 16 (not 36)
  multiply-adds per input pixel and channel pair, as the transposed convolution.
  Returns (N, H, W, 4·Cout) in `_phase_kernel`'s channel order.
  """
  n, h, w, cin = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  shifted = lambda dy, dx: xp[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w, :]
  phases = []
  for a in range(2):
    for b in range(2):
      taps = [(dy, dx, _PHASE_TAPS[a, dy + 1], _PHASE_TAPS[b, dx + 1])
              for dy in (-1, 0, 1) for dx in (-1, 0, 1)
              if _PHASE_TAPS[a, dy + 1] >= 0 and _PHASE_TAPS[b, dx + 1] >= 0]
      patches = jnp.concatenate([shifted(dy, dx) for dy, dx, _, _ in taps], axis=-1)
      k = jnp.concatenate([kernel[ky, kx] for _, _, ky, kx in taps], axis=0)
      phases.append(jnp.dot(patches.reshape(n * h * w, -1), k.astype(x.dtype)))
  # (N·H·W, Cout) per phase -> (N, H, W, phase, Cout): channel (a·2 + b)·Cout + c.
  return jnp.stack(phases, axis=-2).reshape(n, h, w, 4 * kernel.shape[-1])


class Upsample2x(nn.Module):
  """Transposed conv (k=4, s=2, p=1) as a phase-decomposed 3x3 convolution."""
  features: int
  use_bias: bool = True
  conv_impl: str = 'auto'
  dtype: Any = jnp.float32  # compute dtype; the kernel and bias stay float32

  @nn.compact
  def __call__(self, x):
    x = x.astype(self.dtype)
    cin = x.shape[-1]
    kernel = self.param('kernel', nn.initializers.normal(0.02), (4, 4, cin, self.features))
    if _resolve_impl(self.conv_impl) == 'matmul':
      y = _phase_matmuls(x, kernel)
    else:
      y = conv2d(x, _phase_kernel(kernel).astype(x.dtype), (1, 1), ((1, 1), (1, 1)), 'lax')
    y = depth_to_space(y)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return y


# ---------------------------------------------------------------------- MLP --

ACTIVATIONS = {'relu': nn.relu, 'leaky_relu': lambda x: nn.leaky_relu(x, 0.2),
               'tanh': jnp.tanh, 'elu': nn.elu}
INITS = ('lecun', 'normal', 'orthogonal')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def kernel_init(init: str, scale: float | None) -> nn.initializers.Initializer:
  """Dense kernel initialiser: 'lecun' (Flax's default), 'normal' (std `scale`, default
  0.02, as DCGAN and PacGAN) or 'orthogonal' (gain `scale`, default 1; Saxe et al. 2014)."""
  if init == 'lecun':
    return nn.initializers.lecun_normal()
  if init == 'normal':
    return nn.initializers.normal(0.02 if scale is None else scale)
  if init == 'orthogonal':
    return orthogonal(1.0 if scale is None else scale)
  raise ValueError(f'model_options.init={init!r}; valid: {", ".join(INITS)}.')


def orthogonal(gain: float, iterations: int = 60) -> nn.initializers.Initializer:
  """A Haar-random (semi-)orthogonal kernel times `gain` (Saxe et al. 2014), from matmuls.

  The polar factor ``U Vᵀ`` of a Gaussian matrix is Haar-distributed, as the QR-based
  initialisers' result is; here it comes from Newton-Schulz iterations
  ``X ← 1.5 X - 0.5 X XᵀX`` from ``X = A / ‖A‖_F``, which take every singular value to 1.
  Flax's `orthogonal` calls LAPACK's QR, which under ``jit(vmap(init))`` over a population
  on the CPU was seen to hang (jaxlib 0.10.2, recipe B's six kernels) and compiles slowly.
  Columns are orthonormal for (in, out) kernels with in >= out, rows otherwise.
  """
  def init(key, shape, dtype=jnp.float32):
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    tall = (max(rows, cols), min(rows, cols))
    x = jax.random.normal(key, tall, jnp.float32)
    x = x / jnp.linalg.norm(x)
    step = lambda _, x: 1.5 * x - 0.5 * jnp.matmul(
        x, jnp.matmul(x.T, x, precision='highest'), precision='highest')
    x = jax.lax.fori_loop(0, iterations, step, x)
    x = x if rows >= cols else x.T
    return (gain * x).reshape(shape).astype(dtype)
  return init


def generator_norm(h, train: bool, enabled: bool, axis_name: str | None, dtype,
                   momentum: float = 0.9):
  """A generator's optional BatchNorm, called inside a compact module: in training
  (``train=True``, inside the sharded step) batch statistics averaged over the mesh axis
  `axis_name`, each call moving the running averages to `momentum` · old + (1 - `momentum`)
  · batch's; otherwise the running averages (initialisation, sampling). Training never
  reads the running averages: `momentum` changes samples, never the trained weights."""
  if not enabled:
    return h
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, dtype=dtype,
                      axis_name=axis_name if train else None)(h)


class MLPGenerator(nn.Module):
  """z -> [Dense, (BatchNorm), activation] x len(hidden) -> Dense(out_dim).

  With `batch_norm` (PacGAN's generator), training-mode statistics are averaged
  over the mesh axis `axis_name`, as the DCGAN generator's are.
  """
  hidden: Sequence[int] = (128, 128, 128)
  out_dim: int = 2
  activation: str = 'relu'
  batch_norm: bool = False
  weight_init: str = 'lecun'  # see `kernel_init` (`init` would shadow Module.init)
  weight_scale: float | None = None
  axis_name: str | None = None
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, z, train: bool = False):
    ki = kernel_init(self.weight_init, self.weight_scale)
    h = z
    for width in self.hidden:
      h = nn.Dense(width, kernel_init=ki, dtype=self.dtype)(h)
      h = generator_norm(h, train, self.batch_norm, self.axis_name, self.dtype,
                         self.bn_momentum)
      h = ACTIVATIONS[self.activation](h)
    return nn.Dense(self.out_dim, kernel_init=ki, dtype=self.dtype)(h).astype(jnp.float32)


class MLPDiscriminator(nn.Module):
  """x -> [Dense, activation] or [maxout] x len(hidden) -> Dense(1) logit.

  ``maxout`` k > 1 makes every hidden layer a maxout layer (Goodfellow et al.
  2013): ``Dense(width·k)``, then the maximum over each unit's k pieces, as
  PacGAN's discriminator (3 layers of 200 units, 5 pieces).
  """
  hidden: Sequence[int] = (128, 128, 128)
  activation: str = 'leaky_relu'
  maxout: int = 1
  weight_init: str = 'lecun'  # see `kernel_init` (`init` would shadow Module.init)
  weight_scale: float | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    ki = kernel_init(self.weight_init, self.weight_scale)
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      if self.maxout > 1:
        h = nn.Dense(width * self.maxout, kernel_init=ki, dtype=self.dtype)(h)
        h = jnp.max(h.reshape(h.shape[0], width, self.maxout), axis=-1)
      else:
        h = ACTIVATIONS[self.activation](nn.Dense(width, kernel_init=ki, dtype=self.dtype)(h))
    return nn.Dense(1, kernel_init=ki, dtype=self.dtype)(h).astype(jnp.float32)


# -------------------------------------------------------------------- DCGAN --

_BASE = {8: 2, 28: 7, 32: 4, 64: 4}  # generator's starting resolution per image size


def _num_upsamples(size: int) -> int:
  if size not in _BASE:
    raise ValueError(f'DCGAN image size {size}; valid: {", ".join(map(str, _BASE))}.')
  return int(np.log2(size // _BASE[size]))


class DCGANGenerator(nn.Module):
  """z -> dense -> base×base×(width·2^(k-1)) -> k × [Upsample2x, (BN), ReLU] -> tanh.

  With `batch_norm` (DCGAN's generator), batch statistics are averaged over
  the mesh axis `axis_name` in training (``train=True``, inside the sharded
  step), and the running averages (collection ``batch_stats``) are used with
  ``train=False`` (initialisation, sampling).
  """
  size: int = 32
  channels: int = 3
  width: int = 64
  conv_impl: str = 'auto'   # see CONV_IMPLS
  batch_norm: bool = False
  axis_name: str | None = None
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, z, train: bool = False):
    k = _num_upsamples(self.size)
    base = _BASE[self.size]
    c = self.width * 2 ** (k - 1)
    h = self._norm(nn.Dense(base * base * c, dtype=self.dtype)(z), train)
    h = nn.relu(h).reshape(z.shape[0], base, base, c)
    for i in range(k - 1):
      c //= 2
      h = nn.relu(self._norm(Upsample2x(c, conv_impl=self.conv_impl, dtype=self.dtype)(h),
                             train))
    out = Upsample2x(self.channels, conv_impl=self.conv_impl, dtype=self.dtype)(h)
    return jnp.tanh(out).astype(jnp.float32)

  def _norm(self, h, train):
    return generator_norm(h, train, self.batch_norm, self.axis_name, self.dtype,
                          self.bn_momentum)


class DCGANDiscriminator(nn.Module):
  """k × [Conv 4x4 stride 2, LeakyReLU 0.2] -> dense logit; no batch norm."""
  size: int = 32
  width: int = 64
  spectral_norm: bool = False
  conv_impl: str = 'auto'   # see CONV_IMPLS
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x, update_stats: bool = False):
    k = _num_upsamples(self.size)
    conv_fn = conv_as_matmul if _resolve_impl(self.conv_impl) == 'matmul' else None
    h = x
    for i in range(k):
      conv = nn.Conv(self.width * 2 ** i, (4, 4), strides=2, padding=((1, 1), (1, 1)),
                     conv_general_dilated=conv_fn, dtype=self.dtype)
      h = nn.leaky_relu(self._maybe_sn(conv, h, update_stats), 0.2)
    h = h.reshape(h.shape[0], -1)
    return self._maybe_sn(nn.Dense(1, dtype=self.dtype), h, update_stats).astype(jnp.float32)

  def _maybe_sn(self, layer, h, update_stats):
    if not self.spectral_norm:
      return layer(h)
    return nn.SpectralNorm(layer, dtype=self.dtype)(h, update_stats=update_stats)


# ----------------------------------------------------------------- registry --

@dataclasses.dataclass(frozen=True)
class ModelPair:
  generator: nn.Module
  discriminator: nn.Module
  z_dim: int


@dataclasses.dataclass(frozen=True)
class Model:
  """A registered generator/discriminator family.

  ``make(example_shape, dtype, *, <options>) -> ModelPair``: `dtype` is the
  compute dtype's name (``config.dtype``: 'float32' or 'bfloat16'; parameters
  stay float32); the keyword-only parameters are the family's
  ``model_options``, with their defaults.
  """
  name: str
  make: Callable[..., ModelPair]

  def option_defaults(self) -> dict[str, Any]:
    """Every option with its default (a config's ``model_options``)."""
    return {p.name: p.default for p in inspect.signature(self.make).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}

  def option_names(self) -> tuple[str, ...]:
    return tuple(self.option_defaults())

  def check_options(self, options: dict[str, Any] | None) -> dict[str, Any]:
    """The options given a value (None means the default); raises for one it lacks."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    extra = sorted(set(options) - set(self.option_names()))
    if extra:
      raise ValueError(f'model_options {extra} do not apply to model {self.name}; valid: '
                       f'{", ".join(self.option_names())}.')
    return options

  def build(self, example_shape: tuple[int, ...], options: dict[str, Any] | None = None,
            dtype: str = 'float32') -> ModelPair:
    """The pair for examples of `example_shape`; raises for a shape it cannot take."""
    return self.make(tuple(example_shape), dtype, **self.check_options(options))


_REGISTRY: Registry[Model] = Registry('model')


def register(name: str, make: Callable[..., ModelPair], *, replace: bool = False) -> Model:
  """Registers a model family: ``make(example_shape, dtype, *, <options>) -> ModelPair``."""
  return _REGISTRY.add(name, Model(name, make), replace=replace)


get = _REGISTRY.get      # get(name) -> Model; an unknown name raises ValueError
names = _REGISTRY.names  # names() -> the registered names, in order


def make_mlp(example_shape: tuple[int, ...], dtype: str = 'float32', *, z_dim: int = 16,
             hidden: Sequence[int] = (128, 128, 128), d_hidden: Sequence[int] | None = None,
             g_activation: str = 'relu', d_activation: str = 'leaky_relu',
             batch_norm: bool = False, maxout: int = 1, init: str = 'lecun',
             init_scale: float | None = None, bn_momentum: float = 0.9) -> ModelPair:
  """MLP pair for vector data of `example_shape` (D,).

  `hidden` are the generator's widths and, unless `d_hidden` is given, the
  discriminator's; `batch_norm` is in the generator, its running averages kept with
  `bn_momentum` (`generator_norm`); `maxout` pieces (> 1) make
  the discriminator's hidden layers maxout layers; `init` and `init_scale` (see
  `kernel_init`) set every kernel's initialiser (biases start at 0); `dtype`
  is the compute dtype (parameters stay float32).
  """
  if len(example_shape) != 1:
    raise ValueError(f'model mlp is for vector data; got examples of shape {example_shape}.')
  for name, value in (('g_activation', g_activation), ('d_activation', d_activation)):
    if value not in ACTIVATIONS:
      raise ValueError(f'model_options.{name}={value!r}; valid: {", ".join(ACTIVATIONS)}.')
  if isinstance(maxout, bool) or not isinstance(maxout, int) or maxout < 1:
    raise ValueError(f'model_options.maxout={maxout!r}; valid: an integer >= 1 (pieces per '
                     'unit; 1: no maxout).')
  kernel_init(init, init_scale)  # raises for an unknown init
  check_bn_momentum(bn_momentum)
  hidden = tuple(hidden)
  d_hidden = hidden if d_hidden is None else tuple(d_hidden)
  compute = compute_dtype(dtype)
  return ModelPair(
      MLPGenerator(hidden, example_shape[0], g_activation, bool(batch_norm), init, init_scale,
                   axis_name=AXIS, dtype=compute, bn_momentum=float(bn_momentum)),
      MLPDiscriminator(d_hidden, d_activation, int(maxout), init, init_scale, dtype=compute),
      int(z_dim))


def make_dcgan(example_shape: tuple[int, ...], dtype: str = 'float32', *, z_dim: int = 100,
               width: int = 64, spectral_norm: bool = False, batch_norm: bool = False,
               bn_momentum: float = 0.9) -> ModelPair:
  """DCGAN pair for square HxWxC images (H in 8, 28, 32, 64); `dtype` is the compute
  dtype (parameters stay float32); `bn_momentum` as in `make_mlp`."""
  if len(example_shape) != 3 or example_shape[0] != example_shape[1]:
    raise ValueError(f'model dcgan needs square HxWxC images; got shape {example_shape}.')
  size, channels = example_shape[0], example_shape[2]
  _num_upsamples(size)
  check_bn_momentum(bn_momentum)
  compute = compute_dtype(dtype)
  return ModelPair(DCGANGenerator(size, channels, int(width), batch_norm=bool(batch_norm),
                                  axis_name=AXIS, dtype=compute, bn_momentum=float(bn_momentum)),
                   DCGANDiscriminator(size, int(width), bool(spectral_norm), dtype=compute),
                   int(z_dim))


def check_bn_momentum(momentum) -> None:
  """ValueError (one line) unless 0 <= `momentum` < 1."""
  if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not (
      0 <= momentum < 1):
    raise ValueError(f'model_options.bn_momentum={momentum!r}; valid: a number in [0, 1) '
                     '(the share of the old running average kept per update).')


def compute_dtype(name: str):
  """The jnp dtype of a `dtype` name ('float32' or 'bfloat16')."""
  if name not in DTYPES:
    raise ValueError(f'dtype={name!r}; valid: {", ".join(DTYPES)}.')
  return DTYPES[name]


register('mlp', make_mlp)
register('dcgan', make_dcgan)
