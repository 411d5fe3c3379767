"""The train step's FLOPs counted by hand from the model shapes, and chips' peak FLOP/s.

XLA's ``cost_analysis()`` does not count the convolutions XLA:GPU hands to cuDNN (it
gave 0.26 GFLOP for a 27.5 GFLOP DCGAN-32 step), so the harness counts the useful
arithmetic itself: 2 FLOPs per multiply-add of every dense and convolution layer.

Per example, with ``G``/``D`` the generator's/discriminator's forward multiply-adds and
``g0``/``d0`` those of their first layer (whose input needs no gradient):

* one discriminator update: G forward (no gradient), D forward on real and fake, D
  backward on both: weight gradients (D) and input gradients (D - d0);
* the generator update: G forward, D forward on the fakes, D input gradients (D; D's
  weights are not differentiated), G backward: weight gradients (G) and input gradients
  (G - g0); a loss that uses the real logits in the generator loss adds a D forward.

A step (one generator update) is ``n_dis`` discriminator updates and one generator
update, for every example of the global batch and every population member. Not
counted: activations, losses, optimisers, EMA, batch norm, spectral norm's power
iteration (all O(activations + parameters), under 1% here). Gradient penalties
(WGAN-GP, R1, R2, DRAGAN: a double backward through D) are not counted: the count is
None with a reason. This is the transposed convolution's arithmetic (16 multiply-adds
per input pixel and channel pair); ganjax's `Upsample2x` on accelerators runs it as a
3x3 phase convolution that also multiplies the 5 of 9 zero taps (2.25x the generator's
upsampling work), which is not useful work and not counted.

Checked against XLA's ``cost_analysis()`` on the CPU, where ganjax's convolutions are
matmuls that XLA does count (tests/test_bench.py).
"""

from __future__ import annotations

import math
from typing import Any

_BASE = {8: 2, 28: 7, 32: 4, 64: 4}  # as ganjax.models._BASE


def layer_macs(model: str, example_shape: tuple[int, ...], options: dict[str, Any] | None = None
               ) -> tuple[list[int], list[int]]:
  """(generator, discriminator) multiply-adds per example, one number per layer from the
  input, for ``ganjax.models`` families 'mlp' and 'dcgan' with their `options`."""
  options = {k: v for k, v in (options or {}).items() if v is not None}
  if model == 'mlp':
    hidden = tuple(options.get('hidden', (128,) * 3))
    d_hidden = tuple(options.get('d_hidden') or hidden)
    pieces = options.get('maxout', 1)  # maxout: Dense(width * pieces), max over the pieces
    dim = math.prod(example_shape)
    widths = (options.get('z_dim', 16),) + hidden + (dim,)
    g = [a * b for a, b in zip(widths[:-1], widths[1:])]
    widths = (dim,) + d_hidden
    d = [a * b * pieces for a, b in zip(widths[:-1], widths[1:])] + [widths[-1]]
    return g, d
  if model == 'dcgan':
    size, channels = example_shape[0], example_shape[2]
    z, width = options.get('z_dim', 100), options.get('width', 64)
    k = int(math.log2(size // _BASE[size]))
    base, c = _BASE[size], width * 2 ** (k - 1)
    g = [z * base * base * c]  # dense to base x base x c
    hw = base
    for i in range(k):  # transposed conv 4x4 stride 2: 16 MACs per input pixel, channel pair
      c_out = channels if i == k - 1 else c // 2
      g.append(hw * hw * c * c_out * 16)
      hw, c = 2 * hw, c_out
    d, hw, c_in = [], size, channels
    for i in range(k):  # conv 4x4 stride 2: 16 MACs per output pixel, channel pair
      hw //= 2
      d.append(hw * hw * c_in * width * 2 ** i * 16)
      c_in = width * 2 ** i
    d.append(hw * hw * c_in)  # dense logit
    return g, d
  raise ValueError(f'no FLOP count for model {model!r}; counted: mlp, dcgan.')


def unsupported(config) -> str | None:
  """Why `config`'s step is not counted, or None."""
  from ganjax import penalties  # pylint: disable=g-import-not-at-top
  if penalties.get(config.penalty).term is not None:
    return f'penalty {config.penalty} (a double backward) is not counted'
  if config.model not in ('mlp', 'dcgan'):
    return f'model {config.model} is not counted'
  for field, plain in (('pack', 1), ('unroll_steps', 0), ('update_order', 'alternating')):
    if config.get(field, plain) != plain:
      return f'{field}={config.get(field)} is not counted'
  return None


def step_flops(config, example_shape: tuple[int, ...]) -> int | None:
  """FLOPs of one generator step (``n_dis`` D updates + one G update) of a resolved config
  (global batch, all members), or None where `unsupported`."""
  from ganjax import losses  # pylint: disable=g-import-not-at-top
  if unsupported(config):
    return None
  g, d = layer_macs(config.model, tuple(example_shape), config.model_options.to_dict())
  G, D = sum(g), sum(d)  # pylint: disable=invalid-name
  d_update = G + 2 * D + 2 * (D + D - d[0])
  g_update = G + 2 * D + G + (G - g[0])
  if losses.get(config.loss).needs_real_for_generator:
    g_update += D
  macs = config.n_dis * d_update + g_update
  return 2 * macs * config.batch_size * config.population


# Dense (no 2:4 sparsity) tensor-core peaks, TFLOP/s: NVIDIA's datasheets give them "with
# sparsity", twice these. float32 runs as TF32 (XLA's default matmul precision on these
# GPUs; the PyTorch reference enables TF32 as well).
# * H100 SXM5 and H200 SXM (nvidia.com/en-us/data-center/h100 and /h200 datasheets): TF32
#   989, BF16 1,979 with sparsity; H100 PCIe: TF32 756, BF16 1,513 with sparsity.
# * A100 SXM4 and PCIe, 40 and 80 GB (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf):
#   TF32 156, BF16 312 (312 and 624 with sparsity).
# (device_kind contains all of, contains none of, {dtype: TFLOP/s}); first match wins.
PEAK_TFLOPS = (
    (('h200',), ('nvl',), {'float32': 494.5, 'bfloat16': 989.5}),
    (('h100', 'pcie'), (), {'float32': 378.0, 'bfloat16': 756.5}),
    (('h100',), ('nvl',), {'float32': 494.5, 'bfloat16': 989.5}),
    (('a100',), (), {'float32': 156.0, 'bfloat16': 312.0}),
)


def peak_tflops(device_kind: str | None, dtype: str = 'float32') -> float | None:
  """Dense peak TFLOP/s of `device_kind` (``jax.Device.device_kind``) for `dtype`, or None
  (peak unknown)."""
  kind = (device_kind or '').lower()
  for has, lacks, peaks in PEAK_TFLOPS:
    if all(s in kind for s in has) and not any(s in kind for s in lacks):
      return peaks.get(dtype)
  return None
