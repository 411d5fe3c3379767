"""A/B of `Upsample2x` on an accelerator: ganjax's 3x3 phase convolution against the native
transposed convolution (an input-dilated convolution), in the whole DCGAN-32 step.

    python3 -m benchmarks.upsample_ab [--batch 512] [--reps 5] [--steps 30]

Builds the harness's step twice per dtype (float32, bfloat16), the second time with
`models.Upsample2x` swapped for `NativeUpsample2x` while it compiles, then times them in
alternating blocks in one process and prints the medians and their ratio. On an H200 the
native form was 2.2x slower in float32 and 1.4x in bfloat16 (benchmarks/NOTES.md, 17).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # pylint: disable=wrong-import-position
import jax  # pylint: disable=wrong-import-position

from benchmarks.cases import JaxStep, median  # pylint: disable=wrong-import-position
from ganjax import models  # pylint: disable=wrong-import-position


class NativeUpsample2x(models.Upsample2x):
  """``ConvTranspose2d(k=4, s=2, p=1)`` as XLA's transposed convolution: the input dilated
  by 2, padded by 2, convolved with the spatially flipped kernel (same function and
  parameters as `models.Upsample2x`: tests/test_models.py checks it)."""

  @nn.compact
  def __call__(self, x):
    x = x.astype(self.dtype)
    kernel = self.param('kernel', nn.initializers.normal(0.02),
                        (4, 4, x.shape[-1], self.features))
    y = jax.lax.conv_general_dilated(
        x, kernel[::-1, ::-1].astype(x.dtype), (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return y


def _timed(run: JaxStep, steps: int) -> float:
  run.sync()
  t = time.perf_counter()
  for _ in range(steps):
    run.step()
  run.sync()
  return (time.perf_counter() - t) / steps * 1e3


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--model', default='dcgan32')
  parser.add_argument('--batch', type=int, default=512)
  parser.add_argument('--reps', type=int, default=5)
  parser.add_argument('--steps', type=int, default=30)
  args = parser.parse_args(argv)
  print(f'{args.model} batch {args.batch} on {jax.devices()[0].device_kind}, '
        f'{args.reps} alternating blocks of {args.steps} steps (ms per step, medians)')
  for dtype in ('float32', 'bfloat16'):
    overrides = {'batch_size': args.batch, 'dtype': dtype}
    phase = JaxStep(args.model, overrides=overrides)
    swapped, models.Upsample2x = models.Upsample2x, NativeUpsample2x
    try:
      native = JaxStep(args.model, overrides=overrides)
    finally:
      models.Upsample2x = swapped
    for run in (native, phase):
      _timed(run, 3)
    times = {'native': [], 'phase': []}
    for _ in range(args.reps):
      times['native'].append(_timed(native, args.steps))
      times['phase'].append(_timed(phase, args.steps))
    n, p = median(times['native']), median(times['phase'])
    print(f'  {dtype}: phase conv (ganjax) {p:.3f} ms, native transposed conv {n:.3f} ms, '
          f'native / phase {n / p:.3f}', flush=True)


if __name__ == '__main__':
  main()
