"""PyTorch eager reference: ganjax's models and train step, for timing only.

The same layers and parameter counts as `ganjax.models` (checked by
`check_param_counts`), and the same step as `ganjax.step` for the classic
(non-saturating, softplus) loss, no penalty, ``n_dis=1``:

1. one discriminator update: ``softplus(-D(x)) + softplus(D(G(z)))`` (G in
   ``no_grad``, as ganjax differentiates only D's parameters);
2. one generator update on fresh noise: ``softplus(-D(G(z)))`` (D's
   parameters frozen, as ganjax differentiates only G's parameters);
3. Adam on both (the benchmark configs: lr 2e-4, b1 0.5, b2 0.999; the ring
   config's discriminator rate may differ, which does not change the time),
   and the generator EMA when ``ema_decay > 0`` (cifar10/celeba64: 0.999).

Variants (`make_step`'s ``variant``), the same arithmetic each:

* ``eager``: PyTorch as usually written, one kernel launch per op from Python;
* ``cuda_graph`` (CUDA only): the whole step (both updates, Adam with
  ``capturable=True``, the EMA) captured once with ``torch.cuda.graph`` after a
  warm-up on a side stream (PyTorch's "whole-network capture" recipe), then replayed
  after copying the batch into the captured input tensor;
* ``compile``: the step function under ``torch.compile(mode=compile_mode)``; the
  harness uses ``'reduce-overhead'`` (inductor's kernels replayed as CUDA graphs, the
  torch.compile docs' mode "useful for small batches"; 'max-autotune-no-cudagraphs'
  would keep the per-kernel launches, which dominate these small steps on a GPU).

Threads: `make_step` calls ``torch.set_num_threads(os.cpu_count())`` (2 on the
benchmark machine), the whole machine, as XLA's CPU backend uses it. The
harness runs it with ``OMP_WAIT_POLICY=PASSIVE`` (unless set): with OpenMP's
default spin-waiting, 2 threads on 2 cores shared with any other load ran the
DCGAN step 5x slower and the MLP step 100x slower (benchmarks/NOTES.md).

    python benchmarks/torch_reference.py   # prints the parameter counts and one step time
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_BASE = {8: 2, 28: 7, 32: 4, 64: 4}  # as ganjax.models._BASE


def _num_upsamples(size: int) -> int:
  if size not in _BASE:
    raise ValueError(f'DCGAN image size {size}; valid: {", ".join(map(str, _BASE))}.')
  return (size // _BASE[size]).bit_length() - 1


# ---------------------------------------------------------------------- MLP --

class MLPGenerator(nn.Sequential):
  """z -> [Linear, ReLU] x len(hidden) -> Linear(out_dim)."""

  def __init__(self, z_dim: int = 16, hidden=(128, 128, 128), out_dim: int = 2):
    layers, width = [], z_dim
    for h in hidden:
      layers += [nn.Linear(width, h), nn.ReLU()]
      width = h
    super().__init__(*layers, nn.Linear(width, out_dim))


class MLPDiscriminator(nn.Sequential):
  """x -> [Linear, LeakyReLU 0.2] x len(hidden) -> Linear(1)."""

  def __init__(self, in_dim: int = 2, hidden=(128, 128, 128)):
    layers, width = [nn.Flatten()], in_dim
    for h in hidden:
      layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
      width = h
    super().__init__(*layers, nn.Linear(width, 1))


# -------------------------------------------------------------------- DCGAN --

class DCGANGenerator(nn.Module):
  """z -> Linear -> ReLU -> base x base x C -> k x [ConvT(4, 2, 1), ReLU] -> tanh.

  ``ConvTranspose2d(k=4, s=2, p=1)`` is what ganjax's `Upsample2x` computes.
  """

  def __init__(self, size: int = 32, channels: int = 3, width: int = 64, z_dim: int = 100):
    super().__init__()
    k = _num_upsamples(size)
    self.base, self.c = _BASE[size], width * 2 ** (k - 1)
    self.dense = nn.Linear(z_dim, self.base * self.base * self.c)
    ups, c = [], self.c
    for _ in range(k - 1):
      ups += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.ReLU()]
      c //= 2
    ups += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
    self.ups = nn.Sequential(*ups)

  def forward(self, z):
    h = F.relu(self.dense(z)).view(z.shape[0], self.base, self.base, self.c)  # NHWC as Flax
    return self.ups(h.permute(0, 3, 1, 2))


class DCGANDiscriminator(nn.Module):
  """k x [Conv(4, 2, 1), LeakyReLU 0.2] -> flatten -> Linear(1); no batch norm."""

  def __init__(self, size: int = 32, channels: int = 3, width: int = 64):
    super().__init__()
    k = _num_upsamples(size)
    convs, c_in = [], channels
    for i in range(k):
      convs += [nn.Conv2d(c_in, width * 2 ** i, 4, 2, 1), nn.LeakyReLU(0.2)]
      c_in = width * 2 ** i
    self.convs = nn.Sequential(*convs)
    self.out = nn.Linear(c_in * (size >> k) ** 2, 1)

  def forward(self, x):
    return self.out(torch.flatten(self.convs(x), 1))


# --------------------------------------------------------------------- step --

def make_models(model: str, example_shape: tuple[int, ...], z_dim: int | None = None,
                width: int = 64, hidden=(128, 128, 128)) -> tuple[nn.Module, nn.Module, int]:
  """(generator, discriminator, z_dim) matching ``ganjax.models.make``."""
  if model == 'mlp':
    z_dim = z_dim or 16
    return (MLPGenerator(z_dim, hidden, example_shape[0]),
            MLPDiscriminator(example_shape[0], hidden), z_dim)
  if model == 'dcgan':
    z_dim = z_dim or 100
    size, channels = example_shape[0], example_shape[2]
    return (DCGANGenerator(size, channels, width, z_dim),
            DCGANDiscriminator(size, channels, width), z_dim)
  raise ValueError(f'unknown model {model!r}; valid: mlp, dcgan.')


def param_count(module: nn.Module) -> int:
  return sum(p.numel() for p in module.parameters())


def to_torch_batch(batch, device: str = 'cpu') -> torch.Tensor:
  """One real batch (numpy, NHWC for images) -> a torch tensor (NCHW for images)."""
  x = torch.tensor(np.asarray(batch), dtype=torch.float32)
  x = x.permute(0, 3, 1, 2).contiguous() if x.ndim == 4 else x
  return x.to(device)


VARIANTS = ('eager', 'cuda_graph', 'compile')


def make_step(gen: nn.Module, disc: nn.Module, z_dim: int, ema_decay: float = 0.0,
              g_lr: float = 2e-4, d_lr: float = 2e-4, betas=(0.5, 0.999), seed: int = 0,
              threads: int | None = None, device: str = 'cpu', variant: str = 'eager',
              compile_mode: str | None = 'reduce-overhead'
              ) -> Callable[[torch.Tensor], dict]:
  """``step(real) -> {'d_loss', 'g_loss'}`` (detached tensors): one D and one G update.

  `variant` is one of `VARIANTS` (see the module docstring); ``cuda_graph`` captures
  on the returned step's first call (after 3 warm-up steps), ``compile`` compiles on
  its first calls. With ``device='cuda'`` the models move to
  the GPU and the step ends with ``torch.cuda.synchronize()``, so a host timer
  around it times the GPU work.
  """
  if variant not in VARIANTS:
    raise ValueError(f'variant={variant!r}; valid: {", ".join(VARIANTS)}.')
  cuda = device.startswith('cuda')
  if variant == 'cuda_graph' and not cuda:
    raise ValueError('the cuda_graph variant needs a CUDA device.')
  torch.set_num_threads(threads or os.cpu_count() or 1)
  torch.manual_seed(seed)
  gen.to(device)
  disc.to(device)
  sync = torch.cuda.synchronize if cuda else (lambda: None)
  capturable = variant == 'cuda_graph'  # optimiser step count on the device
  g_opt = torch.optim.Adam(gen.parameters(), lr=g_lr, betas=betas, capturable=capturable)
  d_opt = torch.optim.Adam(disc.parameters(), lr=d_lr, betas=betas, capturable=capturable)
  ema = [p.detach().clone() for p in gen.parameters()] if ema_decay > 0 else None
  d_params = list(disc.parameters())

  def update(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = real.shape[0]
    with torch.no_grad():
      fake = gen(torch.randn(n, z_dim, device=device))
    d_loss = F.softplus(-disc(real)).mean() + F.softplus(disc(fake)).mean()
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()

    for p in d_params:
      p.requires_grad_(False)
    g_loss = F.softplus(-disc(gen(torch.randn(n, z_dim, device=device)))).mean()
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()
    for p in d_params:
      p.requires_grad_(True)
    if ema is not None:
      with torch.no_grad():
        torch._foreach_lerp_(ema, list(gen.parameters()), 1.0 - ema_decay)  # pylint: disable=protected-access
    return d_loss.detach(), g_loss.detach()

  if variant == 'eager':
    def step(real: torch.Tensor) -> dict:
      d_loss, g_loss = update(real)
      sync()
      return {'d_loss': d_loss, 'g_loss': g_loss}
    return step
  if variant == 'compile':
    compiled = torch.compile(update, mode=compile_mode)
    mark = getattr(torch.compiler, 'cudagraph_mark_step_begin', lambda: None)

    def compiled_step(real: torch.Tensor) -> dict:
      mark()  # a new iteration: CUDA-graph trees may reuse the previous outputs' memory
      d_loss, g_loss = compiled(real)
      sync()
      return {'d_loss': d_loss.clone(), 'g_loss': g_loss.clone()}
    return compiled_step
  return _graphed(update)


def _graphed(update: Callable[[torch.Tensor], tuple]) -> Callable[[torch.Tensor], dict]:
  """`update` captured as one CUDA graph on its first call's shape (PyTorch's whole-network
  capture: warm-up on a side stream, grads set to None so that backward() allocates them
  from the graph's pool, capture on the same stream); later calls copy the batch into
  the captured input and replay."""
  graph, static = None, {}

  def step(real: torch.Tensor) -> dict:
    nonlocal graph
    if graph is None:
      static['real'] = real.clone()
      stream = torch.cuda.Stream()
      stream.wait_stream(torch.cuda.current_stream())
      with torch.cuda.stream(stream):
        for _ in range(3):  # cuDNN autotuning, optimiser state, allocator warm-up
          update(static['real'])
      torch.cuda.current_stream().wait_stream(stream)
      graph = torch.cuda.CUDAGraph()
      with torch.cuda.graph(graph, stream=stream):
        static['d_loss'], static['g_loss'] = update(static['real'])
    else:
      static['real'].copy_(real)
    graph.replay()
    torch.cuda.synchronize()
    return {'d_loss': static['d_loss'], 'g_loss': static['g_loss']}

  return step


def main():
  for model, shape, batch in (('mlp', (2,), 512), ('dcgan', (32, 32, 3), 64),
                              ('dcgan', (64, 64, 3), 64)):
    gen, disc, z_dim = make_models(model, shape)
    step = make_step(gen, disc, z_dim)
    real = torch.rand(batch, *shape) * 2 - 1
    real = to_torch_batch(real.numpy())
    for _ in range(3):
      step(real)
    t = time.perf_counter()
    for _ in range(5):
      step(real)
    print(f'{model} {shape}: G {param_count(gen):,} D {param_count(disc):,} params, '
          f'{(time.perf_counter() - t) / 5 * 1e3:.1f} ms/step ({torch.get_num_threads()} threads)')


if __name__ == '__main__':
  main()
