"""The feature extractor for the image metrics: a small classifier and its cache.

Inception-v3 is far too big for 8x8 or 28x28 images and is not available
offline, so `FeatureNet` is a small CNN classifier that
`train_feature_extractor` fits in seconds on CPU on the dataset's own labelled
training split. `make_feature_fn` turns its parameters into
``features(images) -> (penultimate_features, class_probs)``, and
`cached_extractor` trains it once per dataset and seed and reuses it from
``<data_dir>/ganjax_features/``. Numbers computed with it are comparable only
with numbers computed with the same extractor, never with published
Inception-based FID/KID/IS values. `ganjax.evaluate` takes any features
function, so another network can be plugged in.

The feature function computes its forward pass with every convolution and
product at ``Precision.HIGHEST`` (true float32) on every platform, as the
metrics do; training runs at the platform's default precision (TF32 on
recent NVIDIA GPUs), so trained parameters differ between platforms anyway.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from ganjax.arrays import as_float, highest_precision, positive_int

Array = Any


class FeatureNet(nn.Module):
  """A small CNN classifier whose penultimate layer serves as the feature space.

  NHWC float images in [-1, 1] of any size and channel count → ``widths``
  3x3 convolutions with ReLU (stride 1, then 2) → global average pooling →
  ``Dense(feature_dim)`` + ReLU (the features) → ``Dense(num_classes)``
  (the logits). `__call__` returns ``(features, logits)``.
  """
  num_classes: int
  feature_dim: int = 64
  widths: Sequence[int] = (16, 32, 64)

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = images
    for i, width in enumerate(self.widths):
      x = nn.relu(nn.Conv(width, (3, 3), strides=1 if i == 0 else 2, name=f'conv{i}')(x))
    x = jnp.mean(x, axis=(1, 2))
    features = nn.relu(nn.Dense(self.feature_dim, name='features')(x))
    logits = nn.Dense(self.num_classes, name='logits')(features)
    return features, logits


def _check_images(images: Array, name: str) -> jax.Array:
  """NHWC images as a float array (integers accepted); ValueError when not 4-D or empty."""
  images = as_float(images, name, ndim=4, allow_int=True)
  if images.shape[0] == 0:
    raise ValueError(f'{name} is empty (shape {images.shape}).')
  return images


def _net_from_params(params: Any) -> FeatureNet:
  """Rebuilds the `FeatureNet` whose parameters are `params` from their shapes."""
  try:
    p = params['params']
    widths = []
    while f'conv{len(widths)}' in p:
      widths.append(int(p[f'conv{len(widths)}']['kernel'].shape[-1]))
    feature_dim, num_classes = (int(s) for s in p['logits']['kernel'].shape)
  except (KeyError, TypeError, IndexError):
    raise ValueError('params are not FeatureNet variables: expected '
                     "{'params': {'conv0': ..., 'features': ..., 'logits': ...}}.") from None
  return FeatureNet(num_classes=num_classes, feature_dim=feature_dim, widths=tuple(widths))


def _check_labels(labels: Array, name: str, n: int, num_classes: int) -> jax.Array:
  labels = np.asarray(labels)
  if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'{name} must be {n} integer labels, got shape {labels.shape} and '
                     f'dtype {labels.dtype}.')
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f'{name} holds labels from {labels.min()} to {labels.max()}; valid: '
                     f'0 to num_classes - 1 = {num_classes - 1}.')
  return jnp.asarray(labels, jnp.int32)


def _batched_logits(net: FeatureNet, params: Any, images: jax.Array,
                    batch_size: int = 500) -> jax.Array:
  apply = jax.jit(highest_precision(lambda x: net.apply(params, x)[1]))
  return jnp.concatenate([apply(images[i:i + batch_size])
                          for i in range(0, images.shape[0], batch_size)])


def train_feature_extractor(train_images: Array, train_labels: Array, test_images: Array,
                            test_labels: Array, *, num_classes: int, seed: int = 0,
                            steps: int = 1000, batch_size: int = 64,
                            learning_rate: float = 2e-3, feature_dim: int = 64,
                            widths: Sequence[int] = (16, 32, 64)) -> tuple[Any, float]:
  """Trains a `FeatureNet` classifier; returns ``(params, test_accuracy)``.

  Minimises the softmax cross-entropy ``-log softmax(logits)_y`` with Adam
  (Kingma & Ba 2015) for `steps` steps on batches of `batch_size` examples
  drawn without replacement within a step. It is a pure function of `seed`
  and the data: on the CPU the same seed gives bit-identical parameters on
  the same machine. On a GPU it does only when XLA runs with
  ``--xla_gpu_deterministic_ops=true`` in ``XLA_FLAGS`` (set before the
  backend initialises), which ganjax's entry points set; without it some GPU
  kernels (reductions, convolution gradients, scatter-adds) may add in a
  different order on each run. On scikit-learn's digits
  (``ganjax.data.Dataset('digits', ...).labelled('train')`` and ``'test'``)
  the defaults reach about 99% test accuracy in about 5 s on two CPU cores.
  Training runs at the platform's default matmul precision; the test
  accuracy is measured at ``HIGHEST``, as `make_feature_fn` computes.

  Args:
    train_images, test_images: NHWC float images in [-1, 1].
    train_labels, test_labels: integer class labels in ``[0, num_classes)``.
    num_classes: number of classes.
    seed: seeds the initialisation and the batches.
    steps, batch_size, learning_rate: the optimisation.
    feature_dim, widths: the `FeatureNet` architecture.

  Returns:
    The variables (``{'params': ...}``) and the accuracy on the test set.
  """
  num_classes = positive_int('num_classes', num_classes, minimum=2)
  steps = positive_int('steps', steps)
  batch_size = positive_int('batch_size', batch_size)
  train_images = _check_images(train_images, 'train_images')
  test_images = _check_images(test_images, 'test_images')
  if train_images.shape[1:] != test_images.shape[1:]:
    raise ValueError(f'train_images are {train_images.shape[1:]} per example and test_images '
                     f'{test_images.shape[1:]}; they must match.')
  train_labels = _check_labels(train_labels, 'train_labels', train_images.shape[0], num_classes)
  test_labels = _check_labels(test_labels, 'test_labels', test_images.shape[0], num_classes)
  batch_size = min(batch_size, train_images.shape[0])

  net = FeatureNet(num_classes=num_classes, feature_dim=feature_dim, widths=tuple(widths))
  init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
  params = net.init(init_key, train_images[:1])
  tx = optax.adam(learning_rate)

  def loss_fn(p, x, y):
    logits = net.apply(p, x)[1]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

  @jax.jit
  def step(params, opt_state, key):
    idx = jax.random.choice(key, train_images.shape[0], (batch_size,), replace=False)
    grads = jax.grad(loss_fn)(params, train_images[idx], train_labels[idx])
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  # A Python loop over one jitted step: on CPU, XLA runs convolutions inside a
  # `lax.scan` body about 10x slower (measured), so scanning the steps loses.
  opt_state = tx.init(params)
  for key in jax.random.split(data_key, steps):
    params, opt_state = step(params, opt_state, key)
  logits = _batched_logits(net, params, test_images)
  accuracy = float(jnp.mean(jnp.argmax(logits, axis=1) == test_labels))
  return params, accuracy


def make_feature_fn(params: Any) -> Callable[[Array], tuple[jax.Array, jax.Array]]:
  """Returns jitted ``features(images) -> (penultimate_features, class_probs)``.

  The architecture is read off the shapes of `params` (from
  `train_feature_extractor` or `load_params`). Features are the ReLU
  activations of the penultimate layer, ``(n, feature_dim)``; probabilities
  are ``softmax(logits)``, ``(n, num_classes)``. It evaluates all images at
  once; `image_metrics` calls it in batches. Every convolution and product
  runs at ``Precision.HIGHEST`` (`ganjax.arrays.highest_precision`), so the
  features are true float32 on every platform.
  """
  net = _net_from_params(params)

  @jax.jit
  @highest_precision
  def features(images):
    feats, logits = net.apply(params, as_float(images, 'images', ndim=4, allow_int=True))
    return feats, jax.nn.softmax(logits, axis=-1)

  return features


def save_params(path: str | os.PathLike, params: Any) -> None:
  """Saves a nested dict of arrays to `path` as ``.npz`` (exactly that name).

  Keys are the tree paths joined with '/' (``'params/conv0/kernel'``), as
  `flax.traverse_util.flatten_dict` writes them; `load_params` reverses it.
  """
  flat = traverse_util.flatten_dict(params)
  arrays = {}
  for path_tuple, value in flat.items():
    if any('/' in str(part) for part in path_tuple):
      raise ValueError(f'parameter path {path_tuple!r} contains "/", which save_params uses '
                       'as its separator.')
    arrays['/'.join(str(part) for part in path_tuple)] = np.asarray(value)
  with open(path, 'wb') as f:  # np.savez(path) would append '.npz' to other names.
    np.savez(f, **arrays)


def load_params(path: str | os.PathLike) -> dict[str, Any]:
  """Loads parameters written by `save_params` (numpy arrays in nested dicts)."""
  with np.load(path, allow_pickle=False) as data:
    flat = {tuple(name.split('/')): data[name] for name in data.files}
  return traverse_util.unflatten_dict(flat)


def cached_extractor(dataset, cache_dir: str, seed: int = 0, steps: int = 1000
                     ) -> tuple[Callable[[Array], tuple[jax.Array, jax.Array]], float]:
  """``(features_fn, test_accuracy)`` for a labelled `ganjax.data.Dataset`.

  Trains on the training split and measures accuracy on the test split the
  first time, then loads ``<cache_dir>/<dataset>_seed<seed>_steps<steps>.npz``.
  Raises ValueError for a dataset without labels.
  """
  path = os.path.join(cache_dir, f'{dataset.name}_seed{seed}_steps{steps}.npz')
  info_path = path + '.json'
  if os.path.exists(path) and os.path.exists(info_path):
    with open(info_path) as f:
      accuracy = json.load(f)['test_accuracy']
    return make_feature_fn(load_params(path)), accuracy
  x_train, y_train = dataset.labelled('train')
  x_test, y_test = dataset.labelled('test')
  num_classes = int(max(y_train.max(), y_test.max())) + 1
  params, accuracy = train_feature_extractor(x_train, y_train, x_test, y_test,
                                             num_classes=num_classes, seed=seed, steps=steps)
  os.makedirs(cache_dir, exist_ok=True)
  tmp = f'{path}.tmp{os.getpid()}'
  save_params(tmp, params)
  os.replace(tmp, path)  # atomic: concurrent runs never read half a file
  with open(info_path, 'w') as f:
    json.dump({'test_accuracy': accuracy, 'num_classes': num_classes}, f)
  return make_feature_fn(params), accuracy
