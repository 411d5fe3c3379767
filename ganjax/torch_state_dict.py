"""Reads ``torch.save`` state dicts (zip and legacy formats) into numpy, without PyTorch.

A ``.pth`` file is a pickle whose tensors are ``torch._utils._rebuild_tensor_v2``
calls on storages kept beside it (in the zip's ``archive/data/<key>`` entries, or
after the pickle in the legacy format). `read_torch_state_dict` unpickles with a
restricted unpickler that admits only the torch names a state dict uses, and
returns ``{key: numpy array}``; `ganjax.inception` loads pytorch-fid's weights with it.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from typing import Any, Callable, NamedTuple

import ml_dtypes
import numpy as np

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'BFloat16Storage': ml_dtypes.bfloat16, 'LongStorage': np.int64, 'IntStorage': np.int32,
    'ShortStorage': np.int16, 'CharStorage': np.int8, 'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch/serialization.py MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001


class _StorageRef(NamedTuple):
  key: str
  dtype: np.dtype
  offset: int  # elements; non-zero only for legacy storage views


class _TensorRef(NamedTuple):
  storage: _StorageRef
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, offset, size, stride, *unused):
  return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
  """Admits only what a state dict pickles: OrderedDict, tensors, typed storages."""

  def __init__(self, f):
    super().__init__(f)
    self.storages: dict[str, np.dtype] = {}

  def find_class(self, module, name):
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor_v2
    if (module, name) == ('torch._utils', '_rebuild_parameter'):
      return lambda data, *unused: data
    if module == 'torch' and name in _STORAGE_DTYPES:  # a storage type stands for its dtype
      return np.dtype(_STORAGE_DTYPES[name])
    raise pickle.UnpicklingError(f'{module}.{name} is not allowed in a weights file.')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == 'storage'
            and isinstance(pid[1], np.dtype)):
      raise pickle.UnpicklingError(f'unsupported persistent id {pid!r:.80}.')
    key, dtype = str(pid[2]), pid[1]
    self.storages[key] = dtype
    view = pid[5] if len(pid) == 6 else None
    # A legacy storage view (view_key, offset, size) reads its root storage from `offset` on.
    return _StorageRef(key, dtype, 0 if view is None else int(view[1]))


def _materialise(ref: _TensorRef, storage: np.ndarray, name: str) -> np.ndarray:
  """The (copied) array that `ref` views in `storage`; refuses out-of-range views."""
  offset = ref.storage.offset + ref.offset
  if len(ref.size) != len(ref.stride) or min(ref.stride, default=0) < 0:
    raise ValueError(f'{name}: bad tensor layout {ref.size}/{ref.stride}.')
  last = offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
  if offset < 0 or (0 not in ref.size and last >= storage.size):
    raise ValueError(f'{name}: tensor reaches past its storage of {storage.size} elements.')
  if 0 in ref.size:
    return np.zeros(ref.size, storage.dtype)
  strides = tuple(s * storage.itemsize for s in ref.stride)
  view = np.lib.stride_tricks.as_strided(storage[offset:], ref.size, strides, writeable=False)
  return np.array(view, dtype=storage.dtype.newbyteorder('='))


def _state_dict(obj: Any, storage: Callable[[_StorageRef], np.ndarray]) -> dict[str, np.ndarray]:
  if not isinstance(obj, dict) or not all(isinstance(v, _TensorRef) for v in obj.values()):
    raise ValueError('the file does not hold a state dict (a mapping of names to tensors).')
  return {str(k): _materialise(v, storage(v.storage), k) for k, v in obj.items()}


def _read_zip(path) -> dict[str, np.ndarray]:
  with zipfile.ZipFile(path) as zf:
    names = zf.namelist()
    pkl = [n for n in names if n == 'data.pkl' or n.endswith('/data.pkl')]
    if len(pkl) != 1:
      raise ValueError(f'{path}: expected one data.pkl in the zip, found {len(pkl)}.')
    prefix = pkl[0][:-len('data.pkl')]
    big = prefix + 'byteorder' in names and zf.read(prefix + 'byteorder').strip() == b'big'
    order = '>' if big else '<'
    obj = _Unpickler(io.BytesIO(zf.read(pkl[0]))).load()
    cache: dict[str, np.ndarray] = {}

    def storage(ref):
      if ref.key not in cache:
        cache[ref.key] = np.frombuffer(zf.read(f'{prefix}data/{ref.key}'),
                                       ref.dtype.newbyteorder(order))
      return cache[ref.key]

    return _state_dict(obj, storage)


def _read_legacy(path) -> dict[str, np.ndarray]:
  """torch's pre-1.6 format: magic, protocol, sys_info, the object, storage keys, raw storages."""
  with open(path, 'rb') as f:
    if _Unpickler(f).load() != _LEGACY_MAGIC or _Unpickler(f).load() != _LEGACY_PROTOCOL:
      raise ValueError(f'{path} is not a torch.save file.')
    little = _Unpickler(f).load().get('little_endian', True)
    unpickler = _Unpickler(f)
    obj = unpickler.load()
    storages = {}
    for key in _Unpickler(f).load():
      dtype = unpickler.storages[str(key)].newbyteorder('<' if little else '>')
      numel = int.from_bytes(f.read(8), 'little' if little else 'big')
      data = f.read(numel * dtype.itemsize)
      if len(data) != numel * dtype.itemsize:
        raise ValueError(f'{path} is truncated (storage {key}).')
      storages[str(key)] = np.frombuffer(data, dtype)
  return _state_dict(obj, lambda ref: storages[ref.key])


def read_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """``{name: numpy array}`` from a ``torch.save(state_dict)`` file (zip or legacy), no torch."""
  return _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
