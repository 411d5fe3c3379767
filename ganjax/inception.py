"""The FID Inception-v3 in Flax: pool3 features (2048-d) comparable with published FID/KID.

The network is pytorch-fid's port of TensorFlow's ``inception-2015-12-05``
graph (pytorch_fid/inception.py: ``fid_inception_v3``, ``FIDInceptionA``,
``FIDInceptionC``, ``FIDInceptionE_1``, ``FIDInceptionE_2``) with torchvision's
``InceptionB``, ``InceptionD`` and ``BasicConv2d`` (bias-free conv, BatchNorm
with eps 0.001, ReLU). The FID blocks average-pool without counting the zero
padding (as TensorFlow does), and ``Mixed_7c`` (``FIDInceptionE_2``) max-pools
where the others average. Layer names are PyTorch's, so the Flax tree mirrors
the state dict. Every convolution runs at ``Precision.HIGHEST``.

Input: NHWC images in [-1, 1], any size, 3 channels (1 is repeated to 3),
resized to 299x299 by `resize_299` = ``jax.image.resize(..., 'bilinear',
antialias=False)``. pytorch-fid calls ``F.interpolate(x, size=(299, 299),
mode='bilinear', align_corners=False)``: samples at ``(i + 0.5) * in / out -
0.5``, clamped at the edges, no antialiasing when downscaling. jax's triangle
kernel without antialiasing is the same map (its weights, renormalised at the
edges, equal the clamp); measured against torch 2.13: at most 2e-7 apart in
float32 from 8 to 1000 pixels, up and down (tests/test_inception.py checks it
against torch and against a numpy transcription of the formula). pytorch-fid
takes [0, 1] and maps to ``2x - 1`` after resizing; bilinear weights sum to 1,
so resizing [-1, 1] images directly is the same.

Weights: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
(`FID_WEIGHTS_URL`) from a given path, or downloaded once into
``$GANJAX_CACHE`` (default ``~/.cache/ganjax``), checked against
`FID_WEIGHTS_SHA256` before use. That digest was not measured here (no
network): it is the one other projects record for this URL
(snap-research/discoscene, models/inception_model.py, ``_MODEL_URL_SHA256``)
and for torch-fidelity's copy of the same file (95,628,359 bytes), and it
starts with the name's ``6726825d`` as torch.hub's naming convention requires.
`ganjax.torch_state_dict` reads ``torch.save`` files (zip and legacy formats)
without PyTorch, admitting only the torch names a state dict uses::

  features = inception.load_features_fn()  # or path='.../pt_inception-...pth'
  evaluate.image_metrics(features, real_images, fake_images, key=key)
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import urllib.request
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from ganjax.torch_state_dict import read_torch_state_dict

FID_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
                   'pt_inception-2015-12-05-6726825d.pth')
FID_WEIGHTS_FILENAME = 'pt_inception-2015-12-05-6726825d.pth'
FID_WEIGHTS_SHA256 = '6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2'
INPUT_SIZE = 299
FEATURE_DIM = 2048

_HIGHEST = jax.lax.Precision.HIGHEST


class WeightsNotFoundError(FileNotFoundError):
  """The Inception weights file is not there and could not be downloaded."""


class WeightsHashError(ValueError):
  """The weights file's SHA-256 is not the expected one."""


# ----------------------------------------------------------------- network --

def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Module):
  """torchvision's ``BasicConv2d``: bias-free conv, BatchNorm (eps 0.001), ReLU."""
  features: int
  kernel: Any = 1
  stride: int = 1
  pad: Any = 0

  @nn.compact
  def __call__(self, x):
    ph, pw = _pair(self.pad)
    x = nn.Conv(self.features, _pair(self.kernel), strides=self.stride,
                padding=((ph, ph), (pw, pw)), use_bias=False, precision=_HIGHEST, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_tf(x):
  """3x3 stride-1 average pool that ignores the zero padding (``count_include_pad=False``)."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x, stride=2, pad=0):
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=((pad, pad), (pad, pad)))


def _chain(x, prefix: str, layers):
  """`BasicConv2d` layers in sequence, named ``<prefix>1``, ``<prefix>2``, ...; each layer is
  ``(features, (kernel, pad))``."""
  for i, (features, (kernel, pad)) in enumerate(layers, 1):
    x = BasicConv2d(features, kernel, pad=pad, name=f'{prefix}{i}')(x)
  return x


class InceptionA(nn.Module):
  """pytorch-fid's ``FIDInceptionA`` (Mixed_5b/c/d)."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(64, name='branch1x1')(x)
    b5 = BasicConv2d(48, name='branch5x5_1')(x)
    b5 = BasicConv2d(64, 5, pad=2, name='branch5x5_2')(b5)
    b3 = BasicConv2d(64, name='branch3x3dbl_1')(x)
    b3 = BasicConv2d(96, 3, pad=1, name='branch3x3dbl_2')(b3)
    b3 = BasicConv2d(96, 3, pad=1, name='branch3x3dbl_3')(b3)
    bp = BasicConv2d(self.pool_features, name='branch_pool')(_avg_pool_tf(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """torchvision's ``InceptionB`` (Mixed_6a)."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, 3, stride=2, name='branch3x3')(x)
    bd = _chain(x, 'branch3x3dbl_', [(64, (1, 0)), (96, (3, 1))])
    bd = BasicConv2d(96, 3, stride=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool(x)], axis=-1)


class InceptionC(nn.Module):
  """pytorch-fid's ``FIDInceptionC`` (Mixed_6b/c/d/e)."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7, row, col = self.channels_7x7, ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, pad)
    b1 = BasicConv2d(192, name='branch1x1')(x)
    b7 = _chain(x, 'branch7x7_', [(c7, (1, 0)), (c7, row), (192, col)])
    bd = _chain(x, 'branch7x7dbl_', [(c7, (1, 0)), (c7, col), (c7, row), (c7, col), (192, row)])
    bp = BasicConv2d(192, name='branch_pool')(_avg_pool_tf(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """torchvision's ``InceptionD`` (Mixed_7a)."""

  @nn.compact
  def __call__(self, x):
    b3 = _chain(x, 'branch3x3_', [(192, (1, 0))])
    b3 = BasicConv2d(320, 3, stride=2, name='branch3x3_2')(b3)
    b7 = _chain(x, 'branch7x7x3_', [(192, (1, 0)), (192, ((1, 7), (0, 3))),
                                     (192, ((7, 1), (3, 0)))])
    b7 = BasicConv2d(192, 3, stride=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool(x)], axis=-1)


class InceptionE(nn.Module):
  """pytorch-fid's ``FIDInceptionE_1`` (pool 'avg', Mixed_7b) and ``_2`` ('max', Mixed_7c)."""
  pool: str = 'avg'  # the branch_pool's pooling

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(320, name='branch1x1')(x)
    b3 = BasicConv2d(384, name='branch3x3_1')(x)
    b3 = jnp.concatenate([BasicConv2d(384, (1, 3), pad=(0, 1), name='branch3x3_2a')(b3),
                          BasicConv2d(384, (3, 1), pad=(1, 0), name='branch3x3_2b')(b3)], axis=-1)
    bd = BasicConv2d(448, name='branch3x3dbl_1')(x)
    bd = BasicConv2d(384, 3, pad=1, name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([BasicConv2d(384, (1, 3), pad=(0, 1), name='branch3x3dbl_3a')(bd),
                          BasicConv2d(384, (3, 1), pad=(1, 0), name='branch3x3dbl_3b')(bd)],
                         axis=-1)
    pooled = _avg_pool_tf(x) if self.pool == 'avg' else _max_pool(x, stride=1, pad=1)
    bp = BasicConv2d(192, name='branch_pool')(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """NHWC images (already 299x299, in [-1, 1]) -> pool3 features ``(n, 2048)``.

  pytorch-fid's ``InceptionV3(output_blocks=[3])`` without its resizing; any
  size from 75x75 up runs, but only 299x299 gives FID-comparable features.
  """

  @nn.compact
  def __call__(self, x):
    x = BasicConv2d(32, 3, stride=2, name='Conv2d_1a_3x3')(x)
    x = BasicConv2d(32, 3, name='Conv2d_2a_3x3')(x)
    x = BasicConv2d(64, 3, pad=1, name='Conv2d_2b_3x3')(x)
    x = _max_pool(x)
    x = BasicConv2d(80, name='Conv2d_3b_1x1')(x)
    x = BasicConv2d(192, 3, name='Conv2d_4a_3x3')(x)
    x = _max_pool(x)
    for name, pool_features in (('Mixed_5b', 32), ('Mixed_5c', 64), ('Mixed_5d', 64)):
      x = InceptionA(pool_features, name=name)(x)
    x = InceptionB(name='Mixed_6a')(x)
    for name, c7 in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160), ('Mixed_6e', 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name='Mixed_7a')(x)
    x = InceptionE('avg', name='Mixed_7b')(x)
    x = InceptionE('max', name='Mixed_7c')(x)
    return jnp.mean(x, axis=(1, 2))


def resize_299(images: jax.Array) -> jax.Array:
  """Bilinear resize of NHWC images to 299x299 with torch's ``align_corners=False`` semantics."""
  n, _, _, c = images.shape
  return jax.image.resize(images, (n, INPUT_SIZE, INPUT_SIZE, c), 'bilinear', antialias=False,
                          precision=_HIGHEST)


@functools.lru_cache(maxsize=1)
def _variable_shapes() -> tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]:
  x = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  tree = jax.eval_shape(FIDInceptionV3().init, jax.random.PRNGKey(0), x)
  return tuple((k, tuple(v.shape)) for k, v in traverse_util.flatten_dict(tree).items())


def variable_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  """Flat ``{flax path: shape}`` of the network's variables (traced once, no computation)."""
  return dict(_variable_shapes())


# ------------------------------------------------------------ weights file --

def cache_dir() -> str:
  """``$GANJAX_CACHE``, or ``~/.cache/ganjax``."""
  return os.environ.get('GANJAX_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'ganjax')


def check_sha256(path: str | os.PathLike, expected: str) -> None:
  """Raises `WeightsHashError` (one line) unless the file's SHA-256 is `expected`."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  got = digest.hexdigest()
  if got != expected.lower():
    raise WeightsHashError(f'{path} has SHA-256 {got}, expected {expected}: not the published '
                           'FID Inception weights (delete it and fetch it again).')


def _download(url: str, dest: str, sha256: str, timeout: float) -> None:
  """Downloads `url` to a temporary file beside `dest`, checks it, then renames it."""
  os.makedirs(os.path.dirname(dest), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), suffix='.part')
  try:
    with os.fdopen(fd, 'wb') as f, urllib.request.urlopen(url, timeout=timeout) as response:
      for block in iter(lambda: response.read(1 << 20), b''):
        f.write(block)
    check_sha256(tmp, sha256)
    os.replace(tmp, dest)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def weights_file(path: str | os.PathLike | None = None, *, sha256: str = FID_WEIGHTS_SHA256,
                 download: bool = True, url: str = FID_WEIGHTS_URL, timeout: float = 30.0) -> str:
  """The checked path of the weights file: `path`, else the cached copy, else a download.

  Raises `WeightsNotFoundError` (one line, naming where to put the file) when
  there is no file and no download, and `WeightsHashError` when its SHA-256
  is not `sha256` (pass the hash of another file, e.g. random test weights).
  """
  if path is not None:
    if not os.path.isfile(path):
      raise WeightsNotFoundError(f'no Inception weights file at {path}; download {url} there.')
  else:
    path = os.path.join(cache_dir(), FID_WEIGHTS_FILENAME)
    if not os.path.isfile(path):
      if not download:
        raise WeightsNotFoundError(f'no Inception weights file at {path}; download {url} there '
                                   '(or set GANJAX_CACHE, or pass path=).')
      try:
        _download(url, path, sha256, timeout)
      except OSError as e:  # urllib's URLError and socket timeouts are OSErrors.
        reason = str(getattr(e, 'reason', e)).replace('\n', ' ')
        raise WeightsNotFoundError(f'no Inception weights file at {path} and downloading {url} '
                                   f'failed ({reason}); put the file there or pass path=.'
                                   ) from None
  check_sha256(path, sha256)
  return os.fspath(path)


# ----------------------------------------------------- state dict -> Flax --

_LEAF_NAMES = {  # flax (collection, module, leaf) -> torch suffix
    ('params', 'conv', 'kernel'): 'conv.weight',
    ('params', 'bn', 'scale'): 'bn.weight',
    ('params', 'bn', 'bias'): 'bn.bias',
    ('batch_stats', 'bn', 'mean'): 'bn.running_mean',
    ('batch_stats', 'bn', 'var'): 'bn.running_var',
}
_UNUSED_KEYS = ('fc.weight', 'fc.bias')  # the 1008-way classifier; FID needs pool3 only


def torch_key(path: tuple[str, ...]) -> str:
  """The state-dict key of a Flax variable path, e.g. ``Mixed_5b.branch1x1.conv.weight``."""
  return '.'.join(path[1:-2] + (_LEAF_NAMES[(path[0],) + path[-2:]],))


def state_dict_to_variables(state_dict: dict[str, np.ndarray]) -> dict[str, Any]:
  """Maps a pytorch-fid state dict onto the Flax variables (conv OIHW -> HWIO).

  Skips ``fc.*`` and each BatchNorm's ``num_batches_tracked``; raises
  `KeyError` naming any other key that has no Flax variable and any Flax
  variable that has no key, and `ValueError` naming a key of the wrong shape.
  """
  shapes = variable_shapes()
  by_key = {torch_key(p): p for p in shapes}
  bn_modules = {k[:-len('.bn.weight')] for k in by_key if k.endswith('.bn.weight')}
  unexpected = [k for k in state_dict if k not in by_key and k not in _UNUSED_KEYS
                and not (k.endswith('.bn.num_batches_tracked')
                         and k[:-len('.bn.num_batches_tracked')] in bn_modules)]
  missing = [k for k in by_key if k not in state_dict]
  if unexpected or missing:
    raise KeyError(f'state dict does not match the FID Inception: unexpected keys {unexpected[:5]}'
                   f'{" ..." if len(unexpected) > 5 else ""}, missing keys {missing[:5]}'
                   f'{" ..." if len(missing) > 5 else ""}.')
  flat = {}
  for key, p in by_key.items():
    value = np.asarray(state_dict[key], np.float32)
    if p[-1] == 'kernel':
      value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
    if value.shape != shapes[p]:
      raise ValueError(f'{key} has shape {np.shape(state_dict[key])}; the FID Inception needs '
                       f'{shapes[p]} (Flax layout) for {"/".join(p)}.')
    flat[p] = value
  return traverse_util.unflatten_dict(flat)


def load_variables(path: str | os.PathLike | None = None, *, sha256: str = FID_WEIGHTS_SHA256,
                   download: bool = True) -> dict[str, Any]:
  """Flax variables from the checked weights file (see `weights_file`)."""
  return state_dict_to_variables(read_torch_state_dict(
      weights_file(path, sha256=sha256, download=download)))


# ---------------------------------------------------------------- features --

@jax.jit
def _features_batch(variables, images):
  return FIDInceptionV3().apply(variables, resize_299(images))


def make_features_fn(variables: dict[str, Any], batch_size: int = 50
                     ) -> Callable[[Any], np.ndarray]:
  """Returns ``features(images) -> (n, 2048) float32`` pool3 features.

  `images`: ``(n, H, W, 3 or 1)`` in [-1, 1], any H and W. They go through
  one jitted call (resize + network) per `batch_size` images, the last batch
  padded so that every call has the same shape.
  """
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f'batch_size={batch_size!r}; valid: an integer >= 1.')
  variables = jax.device_put(variables)

  def features(images) -> np.ndarray:
    if np.ndim(images) != 4 or np.shape(images)[-1] not in (1, 3) or len(images) == 0:
      raise ValueError(f'images must be (n, H, W, 3 or 1) with n >= 1, got {np.shape(images)}.')
    n, bs = len(images), min(batch_size, len(images))
    out = []
    for start in range(0, n, bs):
      batch = np.asarray(images[start:start + bs], np.float32)
      if batch.min() < -1.001 or batch.max() > 1.001:
        raise ValueError(f'images must lie in [-1, 1]; got values from {batch.min()} to '
                         f'{batch.max()}.')
      if batch.shape[-1] == 1:
        batch = np.repeat(batch, 3, axis=-1)
      k = len(batch)
      batch = np.pad(batch, ((0, bs - k), (0, 0), (0, 0), (0, 0)))
      out.append(np.asarray(_features_batch(variables, batch))[:k])
    return np.concatenate(out)

  return features


def load_features_fn(path: str | os.PathLike | None = None, *, batch_size: int = 50,
                     sha256: str = FID_WEIGHTS_SHA256, download: bool = True
                     ) -> Callable[[Any], np.ndarray]:
  """`make_features_fn` with the published weights (see `weights_file` for `path`)."""
  return make_features_fn(load_variables(path, sha256=sha256, download=download), batch_size)


__all__ = [
    'FID_WEIGHTS_SHA256', 'FID_WEIGHTS_URL', 'FIDInceptionV3', 'WeightsHashError',
    'WeightsNotFoundError', 'load_features_fn', 'load_variables',
    'make_features_fn', 'resize_299', 'state_dict_to_variables',
    'weights_file',
]
