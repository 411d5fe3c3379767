"""Training data: 2D mixtures, TFDS array_record sources, per-process sharding.

Every dataset is random access by step: ``batch(step)`` returns this process's
share of global batch `step` as a numpy array (NHWC float32 in [-1, 1] for
images, float32 points for 2D data). The order depends only on the data seed,
so the iterator's position is just the step number, a checkpoint restores it
exactly, and any number of processes see the same global batch.

* ``ring`` and ``grid``: Gaussian mixtures generated from the seed (no files).
* ``digits``: scikit-learn's 8x8 digits, registered as the TFDS builder
  ``sklearn_digits`` that prepares itself offline into array_record, then read
  through ``tfds.data_source`` like any standard dataset.
* ``mnist``, ``cifar10``, ``celeb_a``: standard TFDS datasets through
  ``tfds.data_source``; they must be prepared once (needs TensorFlow and the
  network): ``pip install -e .[prepare] && python -m ganjax.prepare NAME``.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from typing import Any, Callable, Iterator

import numpy as np
from absl import logging

MIXTURES = ('ring', 'grid')
TFDS_NAMES = {'digits': 'sklearn_digits', 'mnist': 'mnist', 'cifar10': 'cifar10',
              'celeba64': 'celeb_a'}
DATASETS = MIXTURES + tuple(TFDS_NAMES)
_IMAGE_SIZE = {'digits': 8, 'mnist': 28, 'cifar10': 32, 'celeba64': 64}
IN_MEMORY_BYTES = 256 << 20  # training splits up to this size (decoded) are held in memory


def default_data_dir() -> str:
  return os.environ.get('TFDS_DATA_DIR', os.path.expanduser('~/tensorflow_datasets'))


# ----------------------------------------------------------------- mixtures --

def mixture_centers(name: str) -> tuple[np.ndarray, float]:
  """Mode centers and per-mode std of the 2D mixtures (VEEGAN/PacGAN protocol)."""
  if name == 'ring':  # 8 modes on the unit circle, std 0.01
    angles = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32), 0.01
  if name == 'grid':  # 25 modes at {-4,-2,0,2,4}^2, std 0.05
    ticks = np.arange(-4, 5, 2, dtype=np.float32)
    return np.stack(np.meshgrid(ticks, ticks), -1).reshape(-1, 2), 0.05
  raise ValueError(f'unknown mixture {name!r}; valid: {", ".join(MIXTURES)}.')


def sample_mixture(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
  centers, std = mixture_centers(name)
  modes = rng.integers(0, len(centers), n)
  return (centers[modes] + std * rng.standard_normal((n, 2))).astype(np.float32)


# -------------------------------------------------------------- the dataset --

@dataclasses.dataclass
class Dataset:
  """Random-access batches of one dataset for one process.

  Global batch `step` holds ``n_dis × batch_size`` examples laid out as
  ``(n_dis, batch_size)`` (one real batch per discriminator update); process
  i of p reads columns ``[i·b/p, (i+1)·b/p)`` of it and nothing else.
  """
  name: str
  batch_size: int
  n_dis: int = 1
  seed: int = 0
  process_index: int = 0
  process_count: int = 1
  data_dir: str | None = None

  def __post_init__(self):
    if self.name not in DATASETS:
      raise ValueError(f'unknown dataset {self.name!r}; valid: {", ".join(DATASETS)}.')
    if self.batch_size % self.process_count:
      raise ValueError(f'batch_size {self.batch_size} does not divide by the process '
                       f'count {self.process_count}.')
    self.local_batch = self.batch_size // self.process_count
    self._sources, self._cache = None, None
    if self.name not in MIXTURES:
      self._sources = open_tfds(self.name, self.data_dir or default_data_dir())
      self._cache = self._load_in_memory()
      if self.num_train < self.n_dis * self.batch_size:
        raise ValueError(f'dataset {self.name} has {self.num_train} training examples, fewer '
                         f'than one step\'s {self.n_dis} x {self.batch_size}.')

  @property
  def example_shape(self) -> tuple[int, ...]:
    if self.name in MIXTURES:
      return (2,)
    size = _IMAGE_SIZE[self.name]
    return (size, size) + np.shape(self._sources['train'][0]['image'])[2:]

  @property
  def has_labels(self) -> bool:
    return self._sources is not None and 'label' in self._sources['train'][0]

  @property
  def num_train(self) -> int:
    return len(self._sources['train']) if self._sources else 0

  def batch(self, step: int) -> np.ndarray:
    """This process's share of global batch `step`: (n_dis, local_batch, ...)."""
    per_step = self.n_dis * self.batch_size
    cols = slice(self.process_index * self.local_batch,
                 (self.process_index + 1) * self.local_batch)
    if self.name in MIXTURES:
      rng = np.random.default_rng([self.seed, step])
      points = sample_mixture(self.name, per_step, rng)
      return points.reshape(self.n_dis, self.batch_size, 2)[:, cols]
    per_epoch = self.num_train // per_step  # drop the remainder of each epoch
    epoch, within = divmod(step, per_epoch)
    perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_train)
    idx = perm[within * per_step:(within + 1) * per_step].reshape(self.n_dis, -1)[:, cols]
    images = self._read('train', idx.ravel())
    return images.reshape(self.n_dis, self.local_batch, *images.shape[1:])

  def call_batch(self, step: int, steps: int = 1) -> np.ndarray:
    """`batch(step)`, or with `steps` k > 1 the batches of steps step..step+k-1 stacked,
    ``(k, n_dis, local_batch, ...)``: the input of one call running k steps."""
    if steps == 1:
      return self.batch(step)
    return np.stack([self.batch(step + i) for i in range(steps)])

  def eval_examples(self, n: int) -> np.ndarray:
    """`n` held-out real examples (the test split; fresh draws for mixtures)."""
    if self.name in MIXTURES:
      return sample_mixture(self.name, n, np.random.default_rng([self.seed, 2**31]))
    m = min(n, len(self._sources['test']))
    return self._read('test', np.arange(m))

  def labelled(self, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All (images, labels) of `split`, for training a feature extractor."""
    if self._sources is None:
      raise ValueError(f'dataset {self.name} has no labels.')
    src = self._sources[split]
    records = src.__getitems__(list(range(len(src))))
    if 'label' not in records[0]:
      raise ValueError(f'dataset {self.name} has no "label" feature.')
    return (self._images(records), np.array([r['label'] for r in records], np.int32))

  def _load_in_memory(self) -> np.ndarray | None:
    """The whole training split as uint8, when it fits in `IN_MEMORY_BYTES`.

    Decoding a few records per step costs the step more than the read itself
    (on 2 cores the prefetch thread competes with XLA); a small dataset is
    decoded once through the same data source and then indexed in memory.
    """
    source = self._sources['train']
    size = _IMAGE_SIZE[self.name]
    channels = np.shape(source[0]['image'])[-1]
    if len(source) * size * size * channels > IN_MEMORY_BYTES:
      return None
    chunks = [np.stack([_fit(r['image'], size) for r in source.__getitems__(
        list(range(i, min(i + 4096, len(source)))))]) for i in range(0, len(source), 4096)]
    return np.concatenate(chunks)

  def _read(self, split: str, indices: np.ndarray) -> np.ndarray:
    if split == 'train' and self._cache is not None:
      return self._cache[indices].astype(np.float32) / 127.5 - 1.0
    return self._images(self._sources[split].__getitems__(indices.tolist()))

  def _images(self, records) -> np.ndarray:
    size = _IMAGE_SIZE[self.name]
    images = np.stack([_fit(r['image'], size) for r in records])
    return images.astype(np.float32) / 127.5 - 1.0


def _fit(image: np.ndarray, size: int) -> np.ndarray:
  """Center-crops to a square and resizes to `size` (CelebA: 218x178 -> 64)."""
  h, w = image.shape[:2]
  if (h, w) == (size, size):
    return image
  s = min(h, w)
  top, left = (h - s) // 2, (w - s) // 2
  crop = image[top:top + s, left:left + s]
  from PIL import Image  # pylint: disable=g-import-not-at-top
  resized = Image.fromarray(crop.squeeze(-1) if crop.shape[-1] == 1 else crop).resize(
      (size, size), Image.BICUBIC)
  return np.asarray(resized).reshape(size, size, -1)


# ------------------------------------------------------------------- TFDS --

def open_tfds(name: str, data_dir: str):
  """The train/test array_record data sources of `name`, prepared if offline."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds_name = TFDS_NAMES[name]
  if name == 'digits':
    from ganjax import digits_builder  # pylint: disable=g-import-not-at-top
    digits_builder.prepare(data_dir)
  else:
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    if not builder.is_prepared():
      raise FileNotFoundError(
          f'dataset {name} (TFDS {tfds_name}) is not prepared under {data_dir}. Prepare it '
          f'once (needs TensorFlow and the network): pip install -e ".[prepare]" && '
          f'python -m ganjax.prepare {name} --data_dir={data_dir}')
  try:
    return tfds.data_source(tfds_name, data_dir=data_dir, download=False)
  except NotImplementedError as e:
    raise FileNotFoundError(
        f'dataset {name} under {data_dir} is not in array_record format; re-prepare it with '
        f'python -m ganjax.prepare {name} --data_dir={data_dir}') from e


# --------------------------------------------------------------- prefetch --

def prefetch(dataset: Dataset, start_step: int, depth: int = 2,
             put: Callable[[np.ndarray], Any] | None = None, steps: int = 1) -> Iterator[Any]:
  """Yields ``dataset.batch(step)`` for step = start_step, ..., read ahead in a thread.

  `put` (e.g. ``lambda b: parallel.shard_batch(b, mesh)``) runs in that thread
  too, so the host-to-device copy of the next batches overlaps the current
  step instead of delaying its dispatch (`parallel.batch_sharder`). Each item
  is ``dataset.call_batch(step, steps)``.
  """
  q: queue.Queue = queue.Queue(maxsize=depth)
  stop = threading.Event()

  def work():
    step = start_step
    while not stop.is_set():
      try:
        item = dataset.call_batch(step, steps)
        if put is not None:
          item = put(item)
      except BaseException as e:  # pylint: disable=broad-except
        item = e
      while not stop.is_set():
        try:
          q.put(item, timeout=0.1)
          break
        except queue.Full:
          continue
      step += steps

  thread = threading.Thread(target=work, daemon=True)
  thread.start()
  try:
    while True:
      item = q.get()
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    stop.set()
    # Wait for the thread to leave JAX (`put`): a daemon thread still inside it when the
    # interpreter exits aborts the process.
    thread.join(timeout=30)
    if thread.is_alive():
      logging.warning('The prefetch thread is still busy 30 s after the loop stopped.')
