"""Training data: 2D mixtures, TFDS array_record sources, per-process sharding.

Every dataset is random access by step: ``batch(step)`` returns this process's
share of global batch `step` as a numpy array (NHWC float32 in [-1, 1] for
images, float32 points for 2D data). The order depends only on the data seed,
so the iterator's position is just the step number, a checkpoint restores it
exactly, and any number of processes see the same global batch.

Every dataset is a registered record (`register`, `get`, `names`):

* ``ring`` and ``grid``: `Mixture`s, Gaussian mixtures generated from the seed (PacGAN's);
  ``gdpp_ring``: GDPP's ring, 7 distinct modes (see `_gdpp_ring`).
* ``digits``: scikit-learn's 8x8 digits, registered as the TFDS builder
  ``sklearn_digits`` that prepares itself offline into array_record, then read
  through ``tfds.data_source`` like any standard dataset.
* ``mnist``, ``cifar10``, ``celeba64``: standard TFDS datasets (`TfdsImages`) through
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

from ganjax.registry import Registry

IN_MEMORY_BYTES = 256 << 20  # training splits up to this size (decoded) are held in memory


def default_data_dir() -> str:
  return os.environ.get('TFDS_DATA_DIR', os.path.expanduser('~/tensorflow_datasets'))


# ----------------------------------------------------------------- sources --

@dataclasses.dataclass(frozen=True, eq=False)
class Mixture:
  """A 2D Gaussian mixture generated from the seed: no files (VEEGAN/PacGAN protocol)."""
  centers: np.ndarray  # (K, 2) mode centers
  std: float           # per-mode standard deviation
  reference: str = ''  # the published row a run is put beside (reference/published-2d-tables.md)

  example_shape = (2,)
  has_labels = False
  num_train = 0

  def open(self, name: str, data_dir: str | None) -> 'Mixture':
    del name, data_dir  # nothing to read
    return self

  def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
    modes = rng.integers(0, len(self.centers), n)
    return (self.centers[modes] + self.std * rng.standard_normal((n, 2))).astype(np.float32)

  def batch(self, step: int, seed: int, n_dis: int, batch_size: int, cols: slice) -> np.ndarray:
    points = self.sample(n_dis * batch_size, np.random.default_rng([seed, step]))
    return points.reshape(n_dis, batch_size, 2)[:, cols]

  def eval_examples(self, n: int, seed: int) -> np.ndarray:
    return self.sample(n, np.random.default_rng([seed, 2**31]))

  @property
  def mixture(self) -> 'Mixture':
    return self


class FiniteMixture:
  """A fixed training set of `size` points drawn once from a `Mixture` (PacGAN trains on
  100,000), visited in a new random order each epoch; the order depends only on the seed
  and the step, so a resumed run sees the same batches. Held-out points stay fresh draws."""
  example_shape = (2,)
  has_labels = False

  def __init__(self, mixture: Mixture, size: int, seed: int):
    self.mixture, self.num_train = mixture, size
    self.points = mixture.sample(size, np.random.default_rng([seed, 2**31 + 1]))

  def batch(self, step: int, seed: int, n_dis: int, batch_size: int, cols: slice) -> np.ndarray:
    return self.points[_epoch_indices(step, seed, n_dis, batch_size, self.num_train)[:, cols]]

  def eval_examples(self, n: int, seed: int) -> np.ndarray:
    return self.mixture.eval_examples(n, seed)


@dataclasses.dataclass(frozen=True)
class TfdsImages:
  """A TFDS image dataset read with ``tfds.data_source`` (array_record), resized to `size`.

  `prepare(data_dir)` is for builders that prepare themselves offline
  (digits); the others must be prepared once with ``python -m ganjax.prepare``.
  """
  tfds_name: str
  size: int
  prepare: Callable[[str], None] | None = None

  def open(self, name: str, data_dir: str | None) -> 'TfdsReader':
    """Opens registered dataset `name`; raises FileNotFoundError if it is not prepared."""
    return TfdsReader(self, open_tfds(name, self, data_dir or default_data_dir()))


class TfdsReader:
  """Random access to an opened `TfdsImages` dataset: NHWC float32 in [-1, 1]."""

  def __init__(self, spec: TfdsImages, sources: dict):
    self.spec, self._sources = spec, sources
    self._cache = self._load_in_memory()

  @property
  def example_shape(self) -> tuple[int, ...]:
    return (self.spec.size, self.spec.size) + np.shape(self._sources['train'][0]['image'])[2:]

  @property
  def has_labels(self) -> bool:
    return 'label' in self._sources['train'][0]

  @property
  def num_train(self) -> int:
    return len(self._sources['train'])

  def batch(self, step: int, seed: int, n_dis: int, batch_size: int, cols: slice) -> np.ndarray:
    idx = _epoch_indices(step, seed, n_dis, batch_size, self.num_train)[:, cols]
    images = self._read('train', idx.ravel())
    return images.reshape(idx.shape + images.shape[1:])

  def eval_examples(self, n: int, seed: int) -> np.ndarray:
    del seed  # the test split, in its order
    return self._read('test', np.arange(min(n, len(self._sources['test']))))

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(self._sources)

  def split_size(self, split: str) -> int:
    return len(self._sources[split])

  def read(self, split: str, indices: np.ndarray) -> np.ndarray:
    """Examples `indices` of `split`, NHWC float32 in [-1, 1]."""
    return self._read(split, np.asarray(indices))

  def labelled(self, split: str) -> tuple[np.ndarray, np.ndarray]:
    src = self._sources[split]
    records = src.__getitems__(list(range(len(src))))
    if 'label' not in records[0]:
      raise ValueError(f'dataset {self.spec.tfds_name} has no "label" feature.')
    return (self._images(records), np.array([r['label'] for r in records], np.int32))

  def _load_in_memory(self) -> np.ndarray | None:
    """The whole training split as uint8, when it fits in `IN_MEMORY_BYTES`.

    Decoding a few records per step costs the step more than the read itself
    (on 2 cores the prefetch thread competes with XLA); a small dataset is
    decoded once through the same data source and then indexed in memory.
    """
    source, size = self._sources['train'], self.spec.size
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
    images = np.stack([_fit(r['image'], self.spec.size) for r in records])
    return images.astype(np.float32) / 127.5 - 1.0


def _epoch_indices(step: int, seed: int, n_dis: int, batch_size: int, num_train: int
                   ) -> np.ndarray:
  """Training-set indices of global batch `step`, (n_dis, batch_size): epochs visit the
  set in a permutation drawn from (seed, epoch); each epoch's remainder is dropped."""
  per_step = n_dis * batch_size
  epoch, within = divmod(step, num_train // per_step)
  perm = np.random.default_rng([seed, epoch]).permutation(num_train)
  return perm[within * per_step:(within + 1) * per_step].reshape(n_dis, batch_size)


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


def open_tfds(name: str, spec: TfdsImages, data_dir: str):
  """The train/test array_record data sources of dataset `name` (prepared if it prepares
  itself; otherwise a FileNotFoundError gives the command that prepares it)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  if spec.prepare is not None:
    spec.prepare(data_dir)
  elif not tfds.builder(spec.tfds_name, data_dir=data_dir).is_prepared():
    raise FileNotFoundError(
        f'dataset {name} (TFDS {spec.tfds_name}) is not prepared under {data_dir}. Prepare it '
        f'once (needs TensorFlow and the network): pip install -e ".[prepare]" && '
        f'python -m ganjax.prepare {name} --data_dir={data_dir}')
  try:
    return tfds.data_source(spec.tfds_name, data_dir=data_dir, download=False)
  except NotImplementedError as e:
    raise FileNotFoundError(
        f'dataset {name} under {data_dir} is not in array_record format; re-prepare it with '
        f'python -m ganjax.prepare {name} --data_dir={data_dir}') from e


# ----------------------------------------------------------------- registry --

_REGISTRY: Registry[Mixture | TfdsImages] = Registry('dataset')


def register(name: str, source: Mixture | TfdsImages, *, replace: bool = False):
  """Registers a dataset: a `Mixture`, a `TfdsImages`, or any record with their methods."""
  return _REGISTRY.add(name, source, replace=replace)


get = _REGISTRY.get      # get(name) -> the dataset's record; an unknown name raises
names = _REGISTRY.names  # names() -> the registered names, in order


def _ring() -> Mixture:  # 8 modes on the unit circle, std 0.01
  angles = 2 * np.pi * np.arange(8) / 8
  return Mixture(np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32), 0.01,
                 'PacGAN Table 1, GAN: 6.3/8 modes, 98.2%')


def _gdpp_ring() -> Mixture:
  """GDPP's and the Unrolled GAN notebook's ring, exactly as their code builds it
  (M-Elfeki/GDPP gdppgan_Synthetic.py, `sample_ring` and `evaluate_samples`): the 8 means
  (sin θ, cos θ), θ = linspace(0, 2π, 8). The first and last angle coincide: 7 distinct
  modes, the one at (0, 1) twice as likely. Rounding keeps the pair apart (sin 2π =
  -2.4e-16), so mode counting splits that mode by the sign of x and, as in GDPP's
  evaluation, reaches 8."""
  angles = np.linspace(0, 2 * np.pi, 8)
  return Mixture(np.stack([np.sin(angles), np.cos(angles)], 1).astype(np.float32), 0.01,
                 'GDPP Table 1, WGAN-GP: 6.8 modes, 59.6%')


def _grid() -> Mixture:  # 25 modes at {-4,-2,0,2,4}^2, std 0.05
  ticks = np.arange(-4, 5, 2, dtype=np.float32)
  return Mixture(np.stack(np.meshgrid(ticks, ticks), -1).reshape(-1, 2), 0.05,
                 'PacGAN Table 1, GAN: 17.3/25 modes, 94.8%')


def _prepare_digits(data_dir: str) -> None:
  from ganjax import digits_builder  # pylint: disable=g-import-not-at-top
  digits_builder.prepare(data_dir)


register('ring', _ring())
register('grid', _grid())
register('gdpp_ring', _gdpp_ring())  # a probe of GDPP's ring row (experiments/rows_2d.py)
register('digits', TfdsImages('sklearn_digits', 8, prepare=_prepare_digits))
register('mnist', TfdsImages('mnist', 28))
register('cifar10', TfdsImages('cifar10', 32))
register('celeba64', TfdsImages('celeb_a', 64))


# -------------------------------------------------------------- the dataset --

@dataclasses.dataclass
class Dataset:
  """Random-access batches of one registered dataset for one process.

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
  train_size: int = 0  # 2D mixtures: a fixed training set of this many points; 0: fresh

  def __post_init__(self):
    spec = get(self.name)
    if self.batch_size % self.process_count:
      raise ValueError(f'batch_size {self.batch_size} does not divide by the process '
                       f'count {self.process_count}.')
    self.local_batch = self.batch_size // self.process_count
    self.source = spec.open(self.name, self.data_dir)
    if self.train_size:
      if not isinstance(self.source, Mixture):
        raise ValueError(f'train_size={self.train_size} applies to 2D mixtures; dataset '
                         f'{self.name} has a training split of its own (set train_size=0).')
      self.source = FiniteMixture(self.source, self.train_size, self.seed)
    if self.mixture is None or self.train_size:
      if self.num_train < self.n_dis * self.batch_size:
        raise ValueError(f'dataset {self.name} has {self.num_train} training examples, '
                         f'fewer than one step\'s {self.n_dis} x {self.batch_size}.')

  @property
  def mixture(self) -> Mixture | None:
    """The mixture's record (centers, std) for 2D mixtures, else None."""
    return getattr(self.source, 'mixture', None)

  @property
  def example_shape(self) -> tuple[int, ...]:
    return self.source.example_shape

  @property
  def has_labels(self) -> bool:
    return self.source.has_labels

  @property
  def num_train(self) -> int:
    return self.source.num_train

  def batch(self, step: int) -> np.ndarray:
    """This process's share of global batch `step`: (n_dis, local_batch, ...)."""
    cols = slice(self.process_index * self.local_batch,
                 (self.process_index + 1) * self.local_batch)
    return self.source.batch(step, self.seed, self.n_dis, self.batch_size, cols)

  def call_batch(self, step: int, steps: int = 1) -> np.ndarray:
    """`batch(step)`, or with `steps` k > 1 the batches of steps step..step+k-1 stacked,
    ``(k, n_dis, local_batch, ...)``: the input of one call running k steps."""
    if steps == 1:
      return self.batch(step)
    return np.stack([self.batch(step + i) for i in range(steps)])

  def eval_examples(self, n: int) -> np.ndarray:
    """`n` held-out real examples (the test split; fresh draws for mixtures)."""
    return self.source.eval_examples(n, self.seed)

  def split_reader(self, split: str) -> tuple[int, Callable[[np.ndarray], np.ndarray]]:
    """``(size, read(indices))`` of an image split ('train' or 'test'), e.g. to compute
    reference feature statistics in chunks."""
    if split not in getattr(self.source, 'splits', ()):
      raise ValueError(f'dataset {self.name} has no {split} split of images.')
    return self.source.split_size(split), lambda idx: self.source.read(split, idx)

  def labelled(self, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All (images, labels) of `split`, for training a feature extractor."""
    if not self.has_labels:
      raise ValueError(f'dataset {self.name} has no labels.')
    return self.source.labelled(split)


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
