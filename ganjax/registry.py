"""One registry shape for every kind of part: losses, penalties, models, datasets, optimisers.

Each kind keeps a `Registry` of records (frozen dataclasses carrying everything
the rest of the code must know about a part) and exposes its three functions
at module level::

    ganjax.losses.get('hinge')      ganjax.losses.names()      ganjax.losses.register(...)

An unknown name raises one generated ``ValueError`` naming the valid choices.
Imports nothing but the standard library, so `ganjax.losses` stays jax-only.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

Record = TypeVar('Record')


class Registry(Generic[Record]):
  """Named records of one kind of part, in registration order."""

  def __init__(self, kind: str):
    self.kind = kind
    self._records: dict[str, Record] = {}

  def add(self, name: str, record: Record, *, replace: bool = False) -> Record:
    """Registers `record` under `name`; re-registering a name needs `replace=True`."""
    if not isinstance(name, str) or not name:
      raise ValueError(f'a {self.kind} name must be a non-empty string, got {name!r}.')
    if name in self._records and not replace:
      raise ValueError(f'{self.kind} {name!r} is already registered; pass replace=True to '
                       'replace it.')
    self._records[name] = record
    return record

  def get(self, name: Any) -> Record:
    """The record called `name`; a ValueError names the valid choices otherwise."""
    try:
      return self._records[name]
    except (KeyError, TypeError):
      raise ValueError(f'unknown {self.kind} {name!r}; valid: {", ".join(self.names())}.'
                       ) from None

  def names(self) -> tuple[str, ...]:
    return tuple(self._records)

  def remove(self, name: str) -> None:
    """Unregisters `name` (for tests and interactive sessions)."""
    self.get(name)
    del self._records[name]
