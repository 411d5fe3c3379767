"""A/B of `Upsample2x` on an accelerator: the native transposed convolution (ganjax's
'lax' path) against the 3x3 phase convolution it replaced, in the whole DCGAN-32 step.

    python3 -m benchmarks.upsample_ab [--batch 512] [--reps 5] [--steps 30]

Builds the harness's step twice per dtype (float32, bfloat16), the second time with
`models.transposed_conv` swapped for the phase convolution while it compiles, then times
them in alternating blocks in one process and prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from benchmarks.cases import JaxStep, median  # pylint: disable=wrong-import-position
from ganjax import models  # pylint: disable=wrong-import-position


def _phase_kernel(kernel: jax.Array) -> jax.Array:
  """(4, 4, Cin, Cout) transposed-conv kernel -> (3, 3, Cin, 4·Cout) conv kernel, output
  channel ``(a·2 + b)·Cout + c`` for phase (a, b); 5 of its 9 taps per phase are zero."""
  k4 = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index 4 is a zero tap
  taps = np.where(models._PHASE_TAPS < 0, 4, models._PHASE_TAPS)  # pylint: disable=protected-access
  k = k4[taps[:, :, None, None], taps[None, None, :, :]]  # (a, dy, b, dx, Cin, Cout)
  k = jnp.transpose(k, (1, 3, 4, 0, 2, 5))                 # (dy, dx, Cin, a, b, Cout)
  return k.reshape(3, 3, kernel.shape[2], 4 * kernel.shape[3])


def phase_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The replaced path: one stride-1 3x3 convolution to the four phases, depth-to-space."""
  y = jax.lax.conv_general_dilated(x, _phase_kernel(kernel).astype(x.dtype), (1, 1),
                                   ((1, 1), (1, 1)), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return models.depth_to_space(y)


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
    native = JaxStep(args.model, overrides=overrides)
    swapped, models.transposed_conv = models.transposed_conv, phase_conv
    try:
      phase = JaxStep(args.model, overrides=overrides)
    finally:
      models.transposed_conv = swapped
    for run in (native, phase):
      _timed(run, 3)
    times = {'native': [], 'phase': []}
    for _ in range(args.reps):
      times['native'].append(_timed(native, args.steps))
      times['phase'].append(_timed(phase, args.steps))
    n, p = median(times['native']), median(times['phase'])
    print(f'  {dtype}: native transposed conv {n:.3f} ms, phase conv {p:.3f} ms, '
          f'native / phase {n / p:.3f}', flush=True)


if __name__ == '__main__':
  main()
