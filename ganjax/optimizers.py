"""The optimiser registry: ``config.{g,d}_optimizer.name`` -> an optax transformation.

Every optimiser is built with ``optax.inject_hyperparams``, so its learning
rate lives in its state and may differ per population member.
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
register('adam', optax.adam, lambda b1, b2: dict(b1=_or(b1, 0.9), b2=_or(b2, 0.999)))
register('rmsprop', optax.rmsprop, lambda b1, b2: dict(decay=_or(b2, 0.9)))
register('sgd', optax.sgd, lambda b1, b2: dict(momentum=b1 or None))
