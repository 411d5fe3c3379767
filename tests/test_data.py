"""Data: determinism by step, per-process shares, epochs, the in-memory path, errors."""

import numpy as np
import pytest

from ganjax import data, mixture_metrics


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


def test_mixture_batches_are_deterministic_and_on_the_modes():
  ds = data.Dataset('ring', 256, n_dis=2, seed=3)
  a, b = ds.batch(7), ds.batch(7)
  np.testing.assert_array_equal(a, b)
  assert a.shape == (2, 256, 2)
  assert not np.array_equal(ds.batch(8), a)
  centers, std = data.get('ring').centers, data.get('ring').std
  dist = np.min(np.linalg.norm(a.reshape(-1, 1, 2) - centers[None], axis=-1), axis=1)
  assert np.all(dist < 6 * std)
  grid_centers = data.get('grid').centers
  assert grid_centers.shape == (25, 2) and set(grid_centers[:, 0]) == {-4, -2, 0, 2, 4}


def _gdpp_evaluate(samples, means, std):
  """GDPP's `evaluate_samples` (M-Elfeki/GDPP gdppgan_Synthetic.py), its loop as written:
  (modes captured, fraction within 3 std of the nearest mean)."""
  l2_store = [[np.sum((x_ - i) ** 2) for i in means] for x_ in samples]
  mode = np.argmin(l2_store, 1)
  dis_ = [l2_store[j][i] for j, i in enumerate(mode)]
  hq = [mode[i] for i in range(len(mode)) if np.sqrt(dis_[i]) <= 3 * std]
  return len(set(hq)), len(hq) / len(samples)


def test_gdpp_ring_is_gdpps_data_and_counts_modes_as_gdpp_does():
  ring = data.get('gdpp_ring')
  thetas = np.linspace(0, 2 * np.pi, 8)  # GDPP's sample_ring and evaluate_samples
  np.testing.assert_array_equal(ring.centers, np.stack([np.sin(thetas), np.cos(thetas)], 1)
                                .astype(np.float32))
  assert ring.std == 0.01 and len(np.unique(ring.centers.round(6), axis=0)) == 7
  points = data.Dataset('gdpp_ring', 2500, seed=1).batch(0)[0]
  at_top = np.linalg.norm(points - [0, 1], axis=1) < 0.1  # the doubled mode
  assert 0.2 < at_top.mean() < 0.3  # 2 of 8 means
  # Its halves (x < 0, x > 0) are nearest to different means, so all 7 modes count as 8,
  # in ganjax's metric and GDPP's evaluation alike; a collapse onto the top mode counts 2.
  means64 = np.stack([np.sin(thetas), np.cos(thetas)], 1)
  jitter = np.random.default_rng(0).normal(0, 0.005, points.shape).astype(np.float32)
  for samples in (points, points[at_top], points + jitter, points[~at_top]):
    ours = mixture_metrics.mode_metrics(samples, ring.centers, ring.std)
    modes, hq = _gdpp_evaluate(samples, means64, 0.01)
    assert (ours['modes'], ours['hq_fraction']) == (modes, hq)
  assert _gdpp_evaluate(points, means64, 0.01)[0] == 8
  assert _gdpp_evaluate(points[at_top], means64, 0.01)[0] == 2
  assert _gdpp_evaluate(points[~at_top], means64, 0.01)[0] == 6


@pytest.mark.parametrize('name', ['ring', 'digits'])
def test_process_shares_partition_the_global_batch(name, tfds_dir):
  whole = data.Dataset(name, 64, n_dis=3, data_dir=tfds_dir).batch(5)
  parts = [data.Dataset(name, 64, n_dis=3, process_index=i, process_count=4,
                        data_dir=tfds_dir).batch(5) for i in range(4)]
  assert parts[0].shape[:2] == (3, 16)
  np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_an_epoch_visits_every_training_example_once(tfds_dir):
  ds = data.Dataset('digits', 100, data_dir=tfds_dir)
  per_epoch = ds.num_train // 100
  seen = np.concatenate([ds.batch(s).reshape(100, -1) for s in range(per_epoch)])
  x_train, _ = ds.labelled('train')
  rows = {r.tobytes() for r in x_train.reshape(len(x_train), -1)}
  assert all(r.tobytes() in rows for r in seen)
  assert len({r.tobytes() for r in seen}) >= 0.95 * per_epoch * 100  # digits has duplicates
  assert not np.array_equal(ds.batch(0), ds.batch(per_epoch))  # a new order next epoch


def test_in_memory_path_equals_the_streaming_path(tfds_dir, monkeypatch):
  cached = data.Dataset('digits', 32, n_dis=2, data_dir=tfds_dir)
  assert cached.source._cache is not None
  monkeypatch.setattr(data, 'IN_MEMORY_BYTES', 0)
  streamed = data.Dataset('digits', 32, n_dis=2, data_dir=tfds_dir)
  assert streamed.source._cache is None
  for step in (0, 1, 44, 45):
    np.testing.assert_array_equal(cached.batch(step), streamed.batch(step))


def test_eval_examples_are_the_held_out_split(tfds_dir):
  ds = data.Dataset('digits', 32, data_dir=tfds_dir)
  x_test, y_test = ds.labelled('test')
  np.testing.assert_array_equal(ds.eval_examples(1000), x_test)
  assert len(x_test) == 360 and ds.num_train == 1437 and ds.has_labels
  assert ds.example_shape == (8, 8, 1)


def test_prefetch_yields_batches_in_order():
  ds = data.Dataset('ring', 16)
  it = data.prefetch(ds, start_step=4)
  for step in range(4, 9):
    np.testing.assert_array_equal(next(it), ds.batch(step))
  it.close()


def test_errors(tfds_dir):
  with pytest.raises(ValueError, match='valid: ring, grid, gdpp_ring, digits'):
    data.Dataset('imagenet', 8)
  with pytest.raises(ValueError, match='does not divide by the process count 3'):
    data.Dataset('ring', 8, process_count=3)
  with pytest.raises(FileNotFoundError, match='python -m ganjax.prepare cifar10'):
    data.Dataset('cifar10', 8, data_dir=tfds_dir)
  with pytest.raises(ValueError, match='has no labels'):
    data.Dataset('ring', 8).labelled('train')


def test_processes_preparing_one_directory_at_once_all_succeed(tmp_path):
  # Parallel test workers once raced here: TFDS renames its finished folder into place and
  # the second process to finish failed (FileExistsError). They now take turns on a lock.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = ('import sys; from ganjax import digits_builder, data; '
          'digits_builder.prepare(sys.argv[1]); '
          'print(data.Dataset("digits", 8, 1, 0, data_dir=sys.argv[1]).num_train)')
  procs = [subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
    assert out.split()[-1] == '1437'
