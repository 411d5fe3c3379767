"""Tests for ganjax.inception: the FID Inception-v3, its weights file and FID/KID parity.

The tests up to the PyTorch section need neither torch nor network (CI runs
them). The PyTorch section compares with pytorch-fid 0.3.0 on random weights
and is skipped where torch, torchvision or pytorch-fid cannot be imported.
"""

import collections
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import pickle
import sys
import time
import types
import warnings
import zipfile

import jax
import numpy as np
import pytest
import scipy.linalg
from flax import traverse_util

from ganjax import evaluate as ge
from ganjax import inception as gi
from ganjax import torch_state_dict as tsd


# ------------------------------------------ torch.save files written without torch --

class _Global:
  """A global reference (``module.name``) pickled without importing it."""

  def __init__(self, module, name):
    self.module, self.name = module, name

  def __call__(self, *args):
    raise AssertionError('never called')


class _Storage:
  """A storage; `view` = (view_key, offset, size) makes it an old-torch legacy storage view."""

  def __init__(self, key, array, storage_type, view=None):
    self.key, self.array, self.type, self.view = key, array, storage_type, view


class _Tensor:
  """Pickles as torch does: ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

  def __init__(self, storage, offset, size, stride):
    self.args = (storage, offset, size, stride, False, collections.OrderedDict())

  def __reduce__(self):
    return _Global('torch._utils', '_rebuild_tensor_v2'), self.args


class _TorchPickler(pickle._Pickler):  # the pure-Python pickler lets a type write GLOBAL itself
  dispatch = pickle._Pickler.dispatch.copy()

  def _save_global_ref(self, obj):
    self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode())
    self.memoize(obj)

  dispatch[_Global] = _save_global_ref

  legacy = True

  def persistent_id(self, obj):
    if not isinstance(obj, _Storage):
      return None
    pid = ('storage', _Global('torch', obj.type), obj.key, 'cpu', obj.array.size)
    return pid + (obj.view,) if self.legacy else pid  # legacy ids carry view metadata


_TYPES = {np.dtype(np.float32): 'FloatStorage', np.dtype(np.int64): 'LongStorage',
          np.dtype(np.float64): 'DoubleStorage', np.dtype(np.float16): 'HalfStorage'}


def _tensors(state_dict):
  """Contiguous tensors, one storage each: ``(pickled dict, {key: storage})``."""
  out, storages = collections.OrderedDict(), {}
  for i, (name, value) in enumerate(state_dict.items()):
    value = np.ascontiguousarray(value)
    storage = _Storage(str(i), value.ravel(), _TYPES[value.dtype])
    stride = tuple(s // value.itemsize for s in value.strides)
    out[name] = _Tensor(storage, 0, value.shape, stride)
    storages[storage.key] = storage
  return out, storages


def _dumps(obj, legacy):
  buf = io.BytesIO()
  pickler = _TorchPickler(buf, protocol=2)
  pickler.legacy = legacy
  pickler.dump(obj)
  return buf.getvalue()


def write_pth(path, obj, storages, legacy=True):
  """Writes `obj` (holding `_Tensor`s) as ``torch.save`` does; returns the file's SHA-256.

  Legacy: magic number, protocol, sys_info, the object, the storage keys, then
  each storage as an 8-byte little-endian element count and its bytes. Zip:
  ``archive/data.pkl`` and one ``archive/data/<key>`` per storage.
  """
  with open(path, 'wb') as f:
    if legacy:
      for header in (tsd._LEGACY_MAGIC, tsd._LEGACY_PROTOCOL,
                     {'protocol_version': 1001, 'little_endian': True}):
        pickle.dump(header, f, protocol=2)
      f.write(_dumps(obj, legacy=True))
      pickle.dump(list(storages), f, protocol=2)
      for s in storages.values():
        f.write(s.array.size.to_bytes(8, 'little') + s.array.tobytes())
    else:
      with zipfile.ZipFile(f, 'w') as zf:
        zf.writestr('archive/data.pkl', _dumps(obj, legacy=False))
        zf.writestr('archive/byteorder', 'little')
        for s in storages.values():
          zf.writestr(f'archive/data/{s.key}', s.array.tobytes())
        zf.writestr('archive/version', '3\n')
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def write_state_dict(path, state_dict, legacy=True):
  return write_pth(path, *_tensors(state_dict), legacy=legacy)


def random_variables(seed):
  """Flax variables with random weights (He-normal kernels, BN near identity); no computation."""
  rng, flat = np.random.default_rng(seed), {}
  for path, shape in gi.variable_shapes().items():
    if path[-1] == 'kernel':
      value = rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
    elif path[-1] in ('scale', 'var'):
      value = rng.uniform(0.8, 1.2, shape)
    else:
      value = rng.normal(0.0, 0.1, shape)
    flat[path] = value.astype(np.float32)
  return traverse_util.unflatten_dict(flat)


def torch_layout_state_dict(variables):
  """The state dict pytorch-fid's network would have for Flax `variables`."""
  sd = collections.OrderedDict()
  for path, value in traverse_util.flatten_dict(variables).items():
    value = np.asarray(value)
    sd[gi.torch_key(path)] = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value
    if path[-1] == 'var':
      sd[gi.torch_key(path).replace('running_var', 'num_batches_tracked')] = np.array(0, np.int64)
  sd['fc.weight'] = np.zeros((1008, 2048), np.float32)
  sd['fc.bias'] = np.zeros((1008,), np.float32)
  return sd


@pytest.mark.parametrize('legacy', [True, False], ids=['legacy', 'zip'])
def test_reader_reads_both_formats_with_views_and_dtypes(tmp_path, legacy):
  rng = np.random.default_rng(0)
  base = rng.normal(size=(6, 5)).astype(np.float32)
  shared = _Storage('0', base.ravel(), 'FloatStorage')
  extra = {'n': np.array(7, np.int64), 'h': rng.normal(size=3).astype(np.float16),
           'd': rng.normal(size=(2, 2))}
  storages = {'0': shared}
  obj = collections.OrderedDict([
      ('w', _Tensor(shared, 0, (6, 5), (5, 1))),
      ('t', _Tensor(shared, 0, (5, 6), (1, 5))),  # a transposed view
      ('s', _Tensor(shared, 7, (2, 3), (5, 1)))])  # a slice at an offset
  for i, (name, value) in enumerate(extra.items(), start=1):
    storages[str(i)] = _Storage(str(i), value.ravel(), _TYPES[value.dtype])
    obj[name] = _Tensor(storages[str(i)], 0, value.shape,
                        tuple(st // value.itemsize for st in value.strides))
  path = str(tmp_path / 'sd.pth')
  write_pth(path, obj, storages, legacy=legacy)
  assert zipfile.is_zipfile(path) != legacy
  out = tsd.read_torch_state_dict(path)
  assert list(out) == ['w', 't', 's', 'n', 'h', 'd']
  np.testing.assert_array_equal(out['w'], base)
  np.testing.assert_array_equal(out['t'], base.T)
  np.testing.assert_array_equal(out['s'], base[1:3, 2:5])
  for k, v in extra.items():
    assert out[k].dtype == v.dtype and out[k].shape == v.shape
    np.testing.assert_array_equal(out[k], v)


def test_reader_reads_legacy_storage_views(tmp_path):
  base = np.arange(12, dtype=np.float32)
  root = _Storage('0', base, 'FloatStorage')
  view = _Storage('0', base, 'FloatStorage', view=('v1', 4, 6))  # elements 4..9 of storage 0
  obj = {'r': _Tensor(root, 0, (12,), (1,)), 'v': _Tensor(view, 1, (2, 2), (1, 2))}
  path = str(tmp_path / 'views.pth')
  write_pth(path, obj, {'0': root})
  out = tsd.read_torch_state_dict(path)
  np.testing.assert_array_equal(out['r'], base)
  np.testing.assert_array_equal(out['v'], [[5, 7], [6, 8]])


def test_reader_refuses_other_globals_and_views_past_the_storage(tmp_path):
  path = tmp_path / 'evil.pth'
  with zipfile.ZipFile(path, 'w') as zf:
    zf.writestr('archive/data.pkl', b'cos\nsystem\n(S"echo hi"\ntR.')
  with pytest.raises(pickle.UnpicklingError, match='os.system is not allowed'):
    tsd.read_torch_state_dict(path)
  storage = _Storage('0', np.zeros(4, np.float32), 'FloatStorage')
  write_pth(path, {'x': _Tensor(storage, 2, (3,), (1,))}, {'0': storage})
  with pytest.raises(ValueError, match='past its storage'):
    tsd.read_torch_state_dict(path)


# ---------------------------------------------------------- the weights file --

def test_wrong_hash_is_rejected_in_one_line(tmp_path):
  path = tmp_path / 'w.pth'
  path.write_bytes(b'not the weights')
  with pytest.raises(gi.WeightsHashError) as err:
    gi.weights_file(path)
  message = str(err.value)
  assert '\n' not in message and str(path) in message and gi.FID_WEIGHTS_SHA256 in message
  assert gi.weights_file(path, sha256=hashlib.sha256(b'not the weights').hexdigest()) == str(path)


def test_published_hash_has_the_file_names_prefix():
  assert gi.FID_WEIGHTS_URL.endswith('/' + gi.FID_WEIGHTS_FILENAME)
  assert gi.FID_WEIGHTS_FILENAME == f'pt_inception-2015-12-05-{gi.FID_WEIGHTS_SHA256[:8]}.pth'
  assert len(gi.FID_WEIGHTS_SHA256) == 64 and int(gi.FID_WEIGHTS_SHA256, 16) >= 0


def test_missing_file_fails_at_once_in_one_line(tmp_path, monkeypatch):
  missing = tmp_path / 'nowhere' / 'w.pth'
  with pytest.raises(FileNotFoundError) as err:
    gi.load_features_fn(missing)
  assert isinstance(err.value, gi.WeightsNotFoundError)
  assert '\n' not in str(err.value) and str(missing) in str(err.value)
  monkeypatch.setenv('GANJAX_CACHE', str(tmp_path / 'cache'))
  cached = os.path.join(str(tmp_path / 'cache'), gi.FID_WEIGHTS_FILENAME)
  with pytest.raises(gi.WeightsNotFoundError, match='no Inception weights file at') as err:
    gi.weights_file(download=False)
  assert '\n' not in str(err.value) and cached in str(err.value)
  start = time.perf_counter()
  with pytest.raises(gi.WeightsNotFoundError) as err:  # nothing listens on port 9 (discard)
    gi.weights_file(url='http://127.0.0.1:9/w.pth', timeout=5)
  assert time.perf_counter() - start < 10
  assert '\n' not in str(err.value) and cached in str(err.value) and 'failed' in str(err.value)
  assert os.listdir(str(tmp_path / 'cache')) == []  # no partial download left behind


def test_download_goes_through_a_checked_temporary_file(tmp_path, monkeypatch):
  source = tmp_path / 'published.pth'
  source.write_bytes(b'weights' * 1000)
  sha = hashlib.sha256(source.read_bytes()).hexdigest()
  monkeypatch.setenv('GANJAX_CACHE', str(tmp_path / 'cache'))
  with pytest.raises(gi.WeightsHashError):
    gi.weights_file(url=source.as_uri(), sha256='0' * 64)
  assert os.listdir(str(tmp_path / 'cache')) == []
  path = gi.weights_file(url=source.as_uri(), sha256=sha)
  assert path == os.path.join(str(tmp_path / 'cache'), gi.FID_WEIGHTS_FILENAME)
  assert open(path, 'rb').read() == source.read_bytes()
  assert os.listdir(str(tmp_path / 'cache')) == [gi.FID_WEIGHTS_FILENAME]
  source.unlink()  # the cached copy is used from now on
  assert gi.weights_file(url=source.as_uri(), sha256=sha) == path


# ------------------------------------------------------------------- resize --

def _torch_bilinear_matrix(n_in, n_out):
  """Rows of ``F.interpolate(mode='bilinear', align_corners=False)`` along one axis.

  Source coordinate ``(i + 0.5) * n_in / n_out - 0.5``, clamped below at 0;
  neighbours ``floor`` and ``min(floor + 1, n_in - 1)`` (aten's
  UpSampleBilinear2d / area_pixel_compute_source_index).
  """
  m = np.zeros((n_out, n_in))
  for i in range(n_out):
    src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = min(int(np.floor(src)), n_in - 1)
    i1 = min(i0 + 1, n_in - 1)
    lam = src - i0
    m[i, i0] += 1 - lam
    m[i, i1] += lam
  return m


@pytest.mark.parametrize('shape', [(2, 5, 7, 3), (1, 32, 32, 3), (1, 299, 299, 1),
                                   (1, 420, 333, 2)])
def test_resize_is_torch_bilinear_align_corners_false(shape):
  x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
  ref = np.einsum('ih,nhwc->niwc', _torch_bilinear_matrix(shape[1], 299), x.astype(np.float64))
  ref = np.einsum('jw,niwc->nijc', _torch_bilinear_matrix(shape[2], 299), ref)
  got = np.asarray(gi.resize_299(x))
  assert got.shape == (shape[0], 299, 299, shape[3])
  # torch and jax both compute the source coordinates in float32 (they agree within 2e-7, see
  # test_resize_matches_torch_interpolate): up to about 2 ulp(size) from exact coordinates.
  np.testing.assert_allclose(got, ref, rtol=0, atol=4e-7 * max(shape[1:3]))


# ------------------------------------------------ network and key mapping --

def test_tree_has_the_94_layers_of_pytorch_fid():
  shapes = gi.variable_shapes()
  assert len(shapes) == 94 * 5  # conv kernel, BN scale/bias/mean/var per BasicConv2d
  assert sum(int(np.prod(s)) for p, s in shapes.items() if p[0] == 'params') == 21_785_568
  keys = {gi.torch_key(p) for p in shapes}
  assert len(keys) == len(shapes)
  assert {'Conv2d_1a_3x3.conv.weight', 'Mixed_5b.branch_pool.bn.running_var',
          'Mixed_7c.branch3x3dbl_3b.bn.bias'} <= keys
  assert shapes[('params', 'Conv2d_1a_3x3', 'conv', 'kernel')] == (3, 3, 3, 32)
  assert shapes[('params', 'Mixed_6b', 'branch7x7_2', 'conv', 'kernel')] == (1, 7, 128, 128)


def test_mapping_round_trips_and_rejects_unknown_missing_or_misshapen_keys():
  variables = random_variables(1)
  sd = torch_layout_state_dict(variables)
  back = gi.state_dict_to_variables(sd)
  jax.tree_util.tree_map(np.testing.assert_array_equal, back, variables)
  for bad, message in [({**sd, 'Mixed_8a.conv.weight': sd['fc.bias']}, 'Mixed_8a.conv.weight'),
                       ({**sd, 'Nope.bn.num_batches_tracked': sd['fc.bias']}, 'Nope.bn'),
                       ({k: v for k, v in sd.items() if k != 'Mixed_6e.branch1x1.bn.bias'},
                        'Mixed_6e.branch1x1.bn.bias')]:
    with pytest.raises(KeyError, match=message):
      gi.state_dict_to_variables(bad)
  misshapen = dict(sd, **{'Mixed_5b.branch1x1.conv.weight': np.zeros((64, 192, 3, 3), np.float32)})
  with pytest.raises(ValueError, match='Mixed_5b.branch1x1.conv.weight has shape'):
    gi.state_dict_to_variables(misshapen)


def test_features_from_a_written_file_are_2048_wide(tmp_path):
  variables = random_variables(2)
  path = str(tmp_path / 'random.pth')
  sha = write_state_dict(path, torch_layout_state_dict(variables))
  x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
  feats = gi.load_features_fn(path, sha256=sha)(x)
  assert feats.shape == (1, gi.FEATURE_DIM) and feats.dtype == np.float32
  assert np.all(np.isfinite(feats)) and np.all(feats >= 0) and feats.max() > 0
  np.testing.assert_array_equal(feats, gi.make_features_fn(variables)(x))


def test_features_batches_pads_and_checks_its_input(monkeypatch):
  calls = []

  def fake_batch(variables, images):
    calls.append(images.shape)
    return images[:, :1, 0, :].reshape(len(images), -1).repeat(2, axis=1)

  monkeypatch.setattr(gi, '_features_batch', fake_batch)
  features = gi.make_features_fn({}, batch_size=4)
  x = np.linspace(-1, 1, 10 * 2 * 2 * 1, dtype=np.float32).reshape(10, 2, 2, 1)
  out = features(x)
  assert calls == [(4, 2, 2, 3)] * 3  # grey repeated to RGB, the last batch padded
  np.testing.assert_array_equal(out, np.repeat(x[:, 0, 0, :], 6, axis=1))
  for bad in (x[..., 0], np.zeros((2, 4, 4, 2)), x * 255, np.zeros((0, 4, 4, 3))):
    with pytest.raises(ValueError):
      features(bad)


# ----------------------------------------------------- FD and KID parity --

def _frechet_distance_reference(mu1, sigma1, mu2, sigma2):
  """pytorch-fid 0.3.0 ``fid_score.calculate_frechet_distance``, float64 (transcribed)."""
  covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
  assert np.isfinite(covmean).all()
  covmean = covmean.real
  diff = mu1 - mu2
  return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def _mmd2_terms(x, y):
  """torch-fidelity's unbiased ``mmd2`` terms in float64: ``(K_XX, K_YY, K_XY)`` parts.

  torch_fidelity/metric_kid.py: ``polynomial_kernel`` (degree 3, gamma 1/d,
  coef0 1) and ``mmd2(..., mmd_est='unbiased')``: diagonals dropped from K_XX
  and K_YY, all of K_XY kept; MMD² = first + second - third.
  """
  def kernel(u, v):
    return (u @ v.T / u.shape[1] + 1.0) ** 3

  k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
  m = len(x)
  kt_xx = (k_xx.sum(axis=1) - np.diagonal(k_xx)).sum()
  kt_yy = (k_yy.sum(axis=1) - np.diagonal(k_yy)).sum()
  return kt_xx / (m * (m - 1)), kt_yy / (m * (m - 1)), 2 * k_xy.sum(axis=0).sum() / (m * m)


def _kid_reference(f1, f2, subsets, subset_size, seed=0):
  """torch-fidelity's ``kid_features_to_metric`` in float64: mean and std (ddof 0) of MMD²."""
  rng = np.random.RandomState(seed)
  mmds = []
  for _ in range(subsets):
    xx, yy, xy = _mmd2_terms(f1[rng.choice(len(f1), subset_size, replace=False)],
                             f2[rng.choice(len(f2), subset_size, replace=False)])
    mmds.append(xx + yy - xy)
  return np.mean(mmds), np.std(mmds)


def _features(shift, seed=0, n=2000, d=16):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(n, d))
  b = rng.normal(size=(n, d)) @ (np.eye(d) + 0.1 * rng.normal(size=(d, d))) + shift
  return a, b


# ganjax's FD and KID are float32; the references are float64. Measured on these data (CPU,
# n=2000, d=16): FD relative error 1.5e-7 at shift 2 (FD 65.2), 2.2e-6 at shift 0.5 (FD 5.28),
# 7.3e-6 at shift 0.1 (FD 1.47): when FD is small against Tr(C1) + Tr(C2) (33 here), their
# float32 round-off cancels into it. Against that scale the error stays below 3.2e-7. KID: 3.4e-8
# relative at shift 2 (132.1), 1.0e-6 at shift 0.1 (0.105); 3.2e-8 of the kernel sums. So
# 1e-6 relative is asserted only for the well-conditioned shift 2, 1e-6 of the scale for both.
@pytest.mark.parametrize('shift', [2.0, 0.1])
def test_frechet_distance_matches_pytorch_fid_in_float64(shift):
  a, b = _features(shift)
  mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
  ref = _frechet_distance_reference(mu1, s1, mu2, s2)
  got = float(ge.frechet_distance(a.astype(np.float32), b.astype(np.float32)))
  scale = np.trace(s1) + np.trace(s2) + (mu1 - mu2) @ (mu1 - mu2)
  assert abs(got - ref) <= 1e-6 * scale
  if shift >= 1:
    assert abs(got - ref) <= 1e-6 * ref


@pytest.mark.parametrize('shift', [2.0, 0.1])
def test_kid_matches_torch_fidelity_in_float64(shift):
  a, b = _features(shift)
  ref_mean, ref_std = _kid_reference(a, b, subsets=3, subset_size=len(a))
  mean, std = ge.kid(a.astype(np.float32), b.astype(np.float32), num_subsets=3,
                     subset_size=len(a), key=jax.random.PRNGKey(0))
  scale = sum(_mmd2_terms(a, b))  # the size of the kernel sums that cancel
  assert abs(float(mean) - ref_mean) <= 1e-6 * scale
  if shift >= 1:
    assert abs(float(mean) - ref_mean) <= 1e-6 * abs(ref_mean)
  # Every subset is the whole set: torch-fidelity's subsets agree to round-off, ganjax's to
  # float32 round-off.
  assert ref_std < 1e-12 * scale and float(std) <= 1e-6 * scale


# ------------------------------------------------------ against PyTorch --

@pytest.fixture(scope='module')
def pytorch_fid():
  """``(torch, pytorch_fid.inception, pytorch_fid.fid_score)``, or a skip.

  PyPI's torchvision wheels are CUDA builds whose C extension does not load
  beside the CPU torch ("operator torchvision::nms does not exist"); the
  Inception code is pure Python, so then torchvision's package is loaded
  without its ``__init__`` (which registers the C operators).
  """
  torch = pytest.importorskip('torch')
  before = set(sys.modules)
  try:
    try:
      import torchvision  # pylint: disable=unused-import,import-outside-toplevel
    except ModuleNotFoundError:
      pytest.skip('torchvision is not installed')
    except (RuntimeError, OSError, ImportError):
      for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
        del sys.modules[name]
      stub = types.ModuleType('torchvision')
      stub.__path__ = list(importlib.util.find_spec('torchvision').submodule_search_locations)
      stub.__version__ = importlib.metadata.version('torchvision')
      sys.modules['torchvision'] = stub
    try:
      import pytorch_fid.fid_score as fid_score  # pylint: disable=import-outside-toplevel
      import pytorch_fid.inception as pfi  # pylint: disable=import-outside-toplevel
      import torchvision.models.inception  # pylint: disable=import-outside-toplevel,unused-import
    except Exception as e:  # pylint: disable=broad-except
      pytest.skip(f'pytorch_fid cannot be imported: {e}')
    yield torch, pfi, fid_score
  finally:  # leave no stub (or pytorch_fid) behind for other test modules
    for name in set(sys.modules) - before:
      if name.split('.')[0] in ('torchvision', 'pytorch_fid'):
        del sys.modules[name]


@pytest.fixture(scope='module')
def random_fid_inception(pytorch_fid):
  """pytorch-fid's ``fid_inception_v3()`` with random weights and BN statistics (no download)."""
  torch, pfi, _ = pytorch_fid
  import torchvision.models.inception as tvi  # pylint: disable=import-outside-toplevel
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(pfi, 'load_state_dict_from_url', lambda *a, **k: None)
    mp.setattr(tvi.Inception3, 'load_state_dict', lambda self, state_dict, *a, **k: None)
    net = pfi.fid_inception_v3()
  g = torch.Generator().manual_seed(1)
  with torch.no_grad():
    for mod in net.modules():
      if isinstance(mod, torch.nn.Conv2d):  # He-normal keeps activations O(1) through 94 layers
        std = (2.0 / mod.weight[0].numel()) ** 0.5
        mod.weight.copy_(std * torch.randn(mod.weight.shape, generator=g))
      elif isinstance(mod, torch.nn.BatchNorm2d):
        c = mod.num_features
        mod.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=g))
        mod.bias.copy_(0.1 * torch.randn(c, generator=g))
        mod.running_mean.copy_(0.1 * torch.randn(c, generator=g))
        mod.running_var.copy_(0.8 + 0.4 * torch.rand(c, generator=g))
  return net.eval()


@pytest.mark.parametrize('legacy', [True, False], ids=['legacy', 'zip'])
def test_reader_matches_torch_load(tmp_path, legacy):
  torch = pytest.importorskip('torch')
  big = torch.randn(10, 12)
  sd = collections.OrderedDict(
      a=torch.randn(3, 4), b=big.t(), c=big[2:5, 3:7], d=torch.tensor(7),
      e=torch.randn(2, 3).double(), f=torch.randn(5).half(), g=torch.tensor([True, False]),
      h=torch.zeros(0, 3),
      i=torch.nn.Parameter(torch.randn(2)), j=torch.arange(6, dtype=torch.int32).reshape(2, 3))
  path = str(tmp_path / 'sd.pth')
  torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
  out = tsd.read_torch_state_dict(path)
  assert list(out) == list(sd)
  for k, v in sd.items():
    ref = v.detach().numpy()
    assert out[k].dtype == ref.dtype and out[k].shape == ref.shape, k
    np.testing.assert_array_equal(out[k], ref)


def test_every_pytorch_fid_key_maps_to_one_flax_leaf(random_fid_inception):
  sd = {k: v.numpy() for k, v in random_fid_inception.state_dict().items()}
  shapes = gi.variable_shapes()
  by_key = {gi.torch_key(p): p for p in shapes}
  skipped = [k for k in sd if k not in by_key]
  assert sorted(skipped) == sorted(['fc.weight', 'fc.bias'] + [
      k for k in sd if k.endswith('.num_batches_tracked')])
  assert set(by_key) <= set(sd) and len(by_key) == len(shapes) == len(sd) - len(skipped)
  for key, path in by_key.items():
    expected = sd[key].transpose(2, 3, 1, 0).shape if sd[key].ndim == 4 else sd[key].shape
    assert shapes[path] == expected, key
  flat = traverse_util.flatten_dict(gi.state_dict_to_variables(sd))
  assert set(flat) == set(shapes)
  renamed = {k.replace('Mixed_6c.', 'Mixed_6x.'): v for k, v in sd.items()}
  with pytest.raises(KeyError, match='Mixed_6x'):
    gi.state_dict_to_variables(renamed)


def test_resize_matches_torch_interpolate():
  torch = pytest.importorskip('torch')
  for shape in [(2, 8, 8, 3), (1, 28, 28, 3), (1, 600, 450, 3)]:
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=(299, 299),
                                          mode='bilinear', align_corners=False)
    # Within 1e-6 on the CPU; 1.8e-6 on an H200 (float32 round-off of the interpolation
    # weights, which XLA:GPU computes with other instructions): 4e-6 is ~30 ulps of 1.
    np.testing.assert_allclose(np.asarray(gi.resize_299(x)), ref.permute(0, 2, 3, 1).numpy(),
                               rtol=0, atol=4e-6)


def test_pool3_features_match_pytorch_fid(pytorch_fid, random_fid_inception, tmp_path):
  torch, pfi, _ = pytorch_fid
  path = str(tmp_path / 'random_fid_inception.pth')
  torch.save(random_fid_inception.state_dict(), path)
  sha = hashlib.sha256(open(path, 'rb').read()).hexdigest()
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(pfi, 'fid_inception_v3', lambda: random_fid_inception)
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
  x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
  assert torch.get_default_dtype() == torch.float32
  deterministic = torch.are_deterministic_algorithms_enabled()
  torch.use_deterministic_algorithms(True)
  try:
    with torch.no_grad():  # pytorch-fid takes [0, 1] and maps it to [-1, 1] after resizing
      ref = model(torch.from_numpy((x + 1) / 2).permute(0, 3, 1, 2))[0].reshape(4, -1).numpy()
  finally:
    torch.use_deterministic_algorithms(deterministic)
  with jax.default_device(jax.devices('cpu')[0]):
    got = gi.load_features_fn(path, sha256=sha, batch_size=4)(x)
  scale = np.abs(ref).max()
  assert ref.shape == got.shape == (4, 2048) and scale > 0.1
  # Measured: max |got - ref| = 5.3e-7 of max |ref|; 3.5e-5 relative for features above 1e-3 max.
  assert np.abs(got - ref).max() <= 1e-4 * scale
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * scale)


def test_frechet_distance_reference_is_pytorch_fids(pytorch_fid):
  fid_score = pytorch_fid[2]
  a, b = _features(0.5)
  stats = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)  # scipy's sqrtm(disp=False)
    ref = fid_score.calculate_frechet_distance(*stats)
  np.testing.assert_allclose(_frechet_distance_reference(*stats), ref, rtol=1e-12)
  got = float(ge.frechet_distance_from_stats(*(s.astype(np.float32) for s in stats)))
  assert abs(got - ref) <= 1e-6 * (np.trace(stats[1]) + np.trace(stats[3]))
