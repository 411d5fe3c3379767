"""scikit-learn's 8x8 digits as a TFDS builder that prepares itself offline.

Registered as ``sklearn_digits``: 1,797 images (pixel values 0..16 scaled to
uint8 0..255, shape 8x8x1) with labels, split by a fixed permutation into
1,437 train and 360 test examples, written as array_record so that it is read
through ``tfds.data_source`` exactly like the standard datasets.
"""

from __future__ import annotations

import fcntl
import os

import numpy as np
import tensorflow_datasets as tfds

NUM_TEST = 360


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
  """8x8 handwritten digits (UCI ML hand-written digits, via scikit-learn)."""
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='scikit-learn load_digits(), 8x8 grey images scaled to 0..255.',
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
            'label': tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=('image', 'label'),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    perm = np.random.default_rng(0).permutation(1797)
    return {'train': self._generate_examples(perm[NUM_TEST:]),
            'test': self._generate_examples(perm[:NUM_TEST])}

  def _generate_examples(self, indices):
    from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
    digits = load_digits()
    for i in indices:
      image = np.round(digits.images[i] * (255.0 / 16.0)).astype(np.uint8)[..., None]
      yield int(i), {'image': image, 'label': int(digits.target[i])}


def prepare(data_dir: str) -> None:
  """Writes the array_record files under `data_dir` unless they are there.

  Processes that prepare the same `data_dir` at once (parallel test workers, several runs
  starting together) take turns on a lock file: TFDS renames its finished folder into
  place and fails when another process has just done the same.
  """
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, '.sklearn_digits.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    builder = SklearnDigits(data_dir=data_dir, file_format='array_record')
    if not builder.is_prepared():
      builder.download_and_prepare()
