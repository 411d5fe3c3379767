"""`pip install ganjax` (no extra) is enough for ganjax.losses and ganjax.penalties.

Builds a wheel of this checkout without network (setuptools from the `test` extra, no build
isolation), installs it into a fresh venv that sees only what the wheel's core requirements
(jax, numpy) pull in, and runs tests/test_losses.py and tests/test_penalties.py there from a
directory outside the repository, so the source tree cannot be imported by accident.

No network: the fresh venv has no pip; the wheel is unzipped into its site-packages, and a
`.pth` file adds a directory of symlinks to exactly the installed distributions it may see,
taken from the venv running this test:
  * the closure of the wheel's core Requires-Dist (jax, jaxlib, numpy, ml_dtypes, opt_einsum,
    scipy), found from the installed metadata, and
  * pytest and hypothesis with their own requirements: test tools, not dependencies of ganjax.
"""

import ast
import email.parser
import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import ganjax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the training codebase needs and a core install must not bring.
TRAINING_ONLY = ['ganjax.train', 'ganjax.models', 'flax', 'optax', 'orbax', 'orbax.checkpoint',
                 'tensorflow_datasets', 'ml_collections']
TEST_TOOLS = ['pytest', 'hypothesis']


def _build_wheel(tmp):
  """A wheel of this checkout, built from a copy so the repository gets no build/ dirs."""
  src = os.path.join(tmp, 'src')
  os.makedirs(src)
  for name in ('setup.cfg', 'pyproject.toml', 'README.md'):
    shutil.copy(os.path.join(REPO, name), src)
  shutil.copytree(os.path.join(REPO, 'ganjax'), os.path.join(src, 'ganjax'),
                  ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
  out = os.path.join(tmp, 'wheel')
  subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                  '--no-index', '--disable-pip-version-check', '-q', '-w', out, src],
                 check=True, cwd=tmp)
  (wheel,) = os.listdir(out)
  return os.path.join(out, wheel)


def _metadata(wheel):
  with zipfile.ZipFile(wheel) as z:
    (name,) = [n for n in z.namelist() if n.endswith('.dist-info/METADATA')]
    return email.parser.Parser().parsestr(z.read(name).decode()), z.namelist()


def _core_requirements(meta):
  reqs = [Requirement(r) for r in meta.get_all('Requires-Dist') or []]
  return [r for r in reqs if r.marker is None or 'extra' not in str(r.marker)]


def _closure(roots):
  """Installed distributions that `roots` (requirement strings) need, by canonical name."""
  found, todo = {}, list(roots)
  while todo:
    req = Requirement(todo.pop())
    name = canonicalize_name(req.name)
    extras = set(req.extras)
    if name in found and extras <= found[name][1]:
      continue
    dist = importlib.metadata.distribution(req.name)
    extras |= found.get(name, (None, set()))[1]
    found[name] = (dist, extras)
    for r in dist.requires or []:
      marker = Requirement(r).marker
      if marker is None or any(marker.evaluate({'extra': e}) for e in extras | {''}):
        todo.append(r)
  return {name: dist for name, (dist, _) in found.items()}


def _link_distributions(dists, target):
  """Symlinks in `target` to the top-level files of each distribution (package, dist-info)."""
  os.makedirs(target)
  for name, dist in sorted(dists.items()):
    assert dist.files, f'{name} has no RECORD; cannot tell its files'
    tops = {f.parts[0] for f in dist.files
            if f.parts[0] not in ('..', '__pycache__') and not f.parts[0].endswith('.pth')}
    for top in sorted(tops):
      path = os.path.realpath(dist.locate_file(top))
      if os.path.exists(path) and not os.path.lexists(os.path.join(target, top)):
        os.symlink(path, os.path.join(target, top))


def test_version_is_read_without_importing_anything():
  """setup.cfg takes `version = attr: ganjax.__version__`; ganjax/__init__.py stays import-free."""
  tree = ast.parse(open(os.path.join(REPO, 'ganjax', '__init__.py')).read())
  assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
  assert 'version = attr: ganjax.__version__' in open(os.path.join(REPO, 'setup.cfg')).read()


@pytest.mark.slow
def test_core_wheel_runs_the_loss_and_penalty_tests_with_jax_alone(tmp_path):
  tmp = str(tmp_path)
  wheel = _build_wheel(tmp)
  meta, names = _metadata(wheel)

  # The wheel: one version (ganjax/__init__.py), typed, core requirements jax and numpy only,
  # with lower bounds only.
  assert meta['Version'] == ganjax.__version__
  assert 'ganjax/py.typed' in names
  core = _core_requirements(meta)
  assert sorted(canonicalize_name(r.name) for r in core) == ['jax', 'numpy'], core
  for r in core:
    assert all(s.operator == '>=' for s in r.specifier), r
  assert {'train', 'test', 'prepare', 'bench'} <= set(meta.get_all('Provides-Extra'))

  # A fresh venv without pip: the wheel unzipped into its site-packages, and a .pth file
  # pointing at symlinks to jax's closure and the test tools.
  venv = os.path.join(tmp, 'venv')
  subprocess.run([sys.executable, '-m', 'venv', '--without-pip', venv], check=True)
  python = os.path.join(venv, 'bin', 'python')
  env = {k: v for k, v in os.environ.items()
         if k not in ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONUSERBASE')}
  env['PYTHONNOUSERSITE'] = '1'
  purelib = subprocess.run(
      [python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
      check=True, capture_output=True, text=True, env=env, cwd=tmp).stdout.strip()
  with zipfile.ZipFile(wheel) as z:
    z.extractall(purelib)
  deps = _closure([str(r) for r in core])
  tools = _closure(TEST_TOOLS)
  assert not {'flax', 'optax', 'orbax-checkpoint', 'tensorflow-datasets'} & set(deps | tools)
  visible = os.path.join(tmp, 'visible')
  _link_distributions({**deps, **tools}, visible)
  with open(os.path.join(purelib, 'ganjax_test_visible.pth'), 'w') as f:
    f.write(visible + '\n')

  # The loss and penalty tests, copied outside the repository, plus checks of where ganjax
  # comes from and of what is absent.
  tests = os.path.join(tmp, 'tests')
  os.makedirs(tests)
  for name in ('test_losses.py', 'test_penalties.py'):
    shutil.copy(os.path.join(REPO, 'tests', name), tests)
  with open(os.path.join(tests, 'pytest.ini'), 'w') as f:
    f.write('[pytest]\naddopts = -p no:cacheprovider\n')
  with open(os.path.join(tests, 'test_installed.py'), 'w') as f:
    f.write(textwrap.dedent(f'''\
        import importlib, os
        import pytest

        def test_ganjax_is_the_installed_wheel():
          import ganjax, ganjax.losses, ganjax.penalties
          assert ganjax.__version__ == {ganjax.__version__!r}
          for m in (ganjax, ganjax.losses, ganjax.penalties):
            assert os.path.realpath(m.__file__).startswith(os.path.realpath({purelib!r}))

        @pytest.mark.parametrize('name', {TRAINING_ONLY!r})
        def test_training_dependencies_are_absent(name):
          with pytest.raises(ImportError):
            importlib.import_module(name)
        '''))
  # The hypothesis property tests (about 20 s) import nothing more than the others.
  result = subprocess.run([python, '-m', 'pytest', '-q', '-rfE', '-k', 'not property', '.'],
                          cwd=tests, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
  assert ' passed' in result.stdout and 'skipped' not in result.stdout, result.stdout[-3000:]
