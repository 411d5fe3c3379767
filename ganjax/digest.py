"""A short hex digest of a pytree: equal for equal trees (paths, dtypes, shapes, bytes)."""

import hashlib
from typing import Any

import jax
import numpy as np


def digest(tree: Any) -> str:
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    leaf = np.asarray(leaf)
    h.update(f'{jax.tree_util.keystr(path)}:{leaf.dtype}:{leaf.shape}'.encode())
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()[:16]
