"""Argument checks shared by the losses, penalties and metrics (imports only jax and numpy)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def as_float(x: Any, name: str, *, ndim: int | None = None,
             allow_int: bool = False) -> jax.Array:
  """`x` as a float array of at least float32 (wider float types are kept).

  Raises TypeError for bool/complex arrays, and for integer arrays unless
  `allow_int`; ValueError when `ndim` is given and `x` has another rank.
  """
  dtype = jnp.result_type(x)
  ok = jnp.issubdtype(dtype, jnp.floating) or (
      allow_int and jnp.issubdtype(dtype, jnp.integer) and dtype != jnp.bool_)
  if not ok:
    kind = 'real numeric' if allow_int else 'floating-point'
    raise TypeError(f'{name} must be a {kind} array, got dtype {dtype}.')
  x = jnp.asarray(x)
  if ndim is not None and x.ndim != ndim:
    raise ValueError(f'{name} must have {ndim} dimensions, got shape {x.shape}.')
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
  """`value` as an int; ValueError naming `name` unless it is an integer >= `minimum`."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f'{name}={value!r}; valid: an integer >= {minimum}.')
  return int(value)
