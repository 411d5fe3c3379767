"""Argument checks shared by the losses, penalties and metrics (imports only jax and numpy).

Also `highest_precision`, which the metrics (`ganjax.evaluate`, `ganjax.features`)
use to run every matrix product and convolution in full float32.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

_F = TypeVar('_F', bound=Callable[..., Any])


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


def check_range(name: str, value: Any, low: float = -np.inf, high: float = np.inf, *,
                low_open: bool = False, high_open: bool = False) -> Any:
  """`value` unchanged; ValueError naming `name` unless it is finite and in the range.

  The range is ``[low, high]``, with `low_open`/`high_open` excluding an end;
  `value` may be a number or an array (every element is checked). A traced
  value (inside ``jit``, ``grad``, ``vmap``) has no value to check and is
  returned unchecked.
  """
  if isinstance(value, jax.core.Tracer):
    return value
  ends = ('(' if low_open else '[', ')' if high_open else ']')
  if np.isinf(low) and np.isinf(high):
    valid = 'a finite number'
  elif np.isinf(high) and low == 0 and low_open:
    valid = 'a positive finite number'
  elif np.isinf(high):
    valid = f'a finite number {">" if low_open else ">="} {low:g}'
  elif np.isinf(low):
    valid = f'a number {"<" if high_open else "<="} {high:g}'
  else:
    valid = f'a number in {ends[0]}{low:g}, {high:g}{ends[1]}'
  try:
    x = np.asarray(value)
  except Exception:  # pylint: disable=broad-except
    x = np.asarray(None)
  ok = x.dtype.kind in 'iuf' and bool(np.all(np.isfinite(x))) and bool(np.all(
      ((x > low) if low_open else (x >= low)) & ((x < high) if high_open else (x <= high))))
  if not ok:
    raise ValueError(f'{name}={value!r}; valid: {valid}.')
  return value


def highest_precision(fn: _F) -> _F:
  """`fn` run under ``jax.default_matmul_precision('highest')``.

  Every dot, matmul, einsum and convolution traced inside it without an
  explicit ``precision=`` is lowered with ``Precision.HIGHEST``: true float32
  products instead of the platform default (TF32 on recent NVIDIA GPUs, one
  bfloat16 pass on TPUs), whatever ``jax_default_matmul_precision`` is set
  to outside. That covers the products that library code traced inside it
  emits (Flax layers, ``jnp.linalg`` routines that JAX builds from products),
  but not the arithmetic inside opaque library calls (LAPACK on the CPU,
  cuSOLVER on GPUs), which is float32 anyway. The setting acts when operations
  are traced, so wrap the function *inside* ``jax.jit``:
  ``jax.jit(highest_precision(f))``; it is part of the trace context, so a
  jitted function called in it is retraced rather than reused at another
  precision.
  """
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with jax.default_matmul_precision('highest'):
      return fn(*args, **kwargs)
  return wrapped  # type: ignore[return-value]
