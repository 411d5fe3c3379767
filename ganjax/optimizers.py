"""The optimiser registry: ``config.{g,d}_optimizer.name`` -> an optax transformation.

Every optimiser is built with ``optax.inject_hyperparams``, so its learning
rate lives in its state and may differ per population member.

Adam takes the square root of its second moment with ``eps_root`` = 1e-30 inside it (in
the state, as optax's default 0 was, so older checkpoints restore and continue with 0):
differentiable where a parameter's gradients have all been exactly zero, which the unrolled
look-ahead (``config.unroll_steps``) needs. The relativistic loss cancels D's output bias,
whose gradient was then exactly 0 in some members on the CPU, and sqrt's infinite derivative at 0 made
G's gradient NaN at the first step. In float32 the sum changes no second moment above
1.7e-23 (1e-30 is under half its spacing there). Measured on recipe-B rows: 300 steps of
plain hinge, packed least squares and packed WGAN-GP were bitwise the same as with 0; plain
relativistic and unrolled non-saturating were not (the latter still the same at step 20):
a moment that small, as D's cancelled bias has, parts a run at rounding level.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import optax

from ganjax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """An optax factory and ``kwargs(b1, b2) -> its keyword arguments`` (b1/b2 may be None)."""
  name: str
  factory: Callable[..., optax.GradientTransformation]
  kwargs: Callable[[float | None, float | None], dict]


_REGISTRY: Registry[Optimizer] = Registry('optimizer')


def register(name: str, factory: Callable[..., optax.GradientTransformation],
             kwargs: Callable[[float | None, float | None], dict], *,
             replace: bool = False) -> Optimizer:
  return _REGISTRY.add(name, Optimizer(name, factory, kwargs), replace=replace)


get = _REGISTRY.get      # get(name) -> Optimizer; an unknown name raises ValueError
names = _REGISTRY.names  # names() -> the registered names, in order


def make(spec: dict, learning_rate) -> optax.GradientTransformation:
  """The optimiser of `spec` (``{'name', 'b1', 'b2'}``) at `learning_rate`."""
  record = get(spec['name'])
  return optax.inject_hyperparams(record.factory)(
      learning_rate=learning_rate, **record.kwargs(spec.get('b1'), spec.get('b2')))


_or = lambda value, default: default if value is None else value
ADAM_EPS_ROOT = 1e-30
register('adam', optax.adam, lambda b1, b2: dict(b1=_or(b1, 0.9), b2=_or(b2, 0.999),
                                                 eps_root=ADAM_EPS_ROOT))
register('rmsprop', optax.rmsprop, lambda b1, b2: dict(decay=_or(b2, 0.9)))
register('sgd', optax.sgd, lambda b1, b2: dict(momentum=b1 or None))
