"""The loss-comparison experiment runs end to end (its --quick mode) and writes its report."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_compare_losses_quick(tmp_path):
  out = tmp_path / 'results'
  proc = subprocess.run(
      # grid runs the same mixture code as ring; wgan-gp (a penalty, n_dis 5) covers the
      # experiment's code paths for every loss (its rows come from the registry, below;
      # tests/test_registry.py runs a newly registered loss): a third of all six losses' time.
      [sys.executable, 'experiments/compare_losses.py', '--quick', '--datasets', 'ring',
       'digits', '--losses', 'wgan', f'--out={out}', f'--data_dir={tmp_path / "tfds"}'],
      cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = (out / 'compare_losses.md').read_text()
  variants = ['wgan-gp']
  assert '## grid' not in report
  for dataset in ('ring', 'digits'):
    assert f'## {dataset}' in report
    assert (out / f'samples_{dataset}.png').stat().st_size > 1000
    assert (out / f'curves_{dataset}.png').stat().st_size > 1000
  for variant in variants:
    assert report.count(f'| {variant} |') == 2  # one row per dataset
  assert '6.3 ± 0.5' in report  # the published PacGAN number for the ring
  assert report.count('VEEGAN (Srivastava et al. 2017') == 1  # beside the ring's table
  results = json.loads((out / 'results.json').read_text())
  for dataset, by_variant in results.items():
    for variant, r in by_variant.items():
      assert len(r['members']) == 2  # two seeds in one population
      assert len({m['state_digest'] for m in r['members']}) == 2
      key = 'fid' if dataset == 'digits' else 'modes'
      assert all(key in m for m in r['members']), (dataset, variant)
      assert r['curves'], (dataset, variant)


def test_every_registered_row_is_a_variant():
  from experiments import compare_losses  # pylint: disable=g-import-not-at-top
  from ganjax import losses  # pylint: disable=g-import-not-at-top
  rows = compare_losses.variants()
  assert rows['classic (non-saturating)'] == ('classic', {})
  assert rows['classic (minimax)'] == ('classic', {'generator': 'minimax'})
  assert {loss for loss, _ in rows.values()} == set(losses.names())
  assert list(compare_losses.variants(['wgan'])) == ['wgan-gp']


def test_search_losses_quick(tmp_path):
  """The equal-budget search (--quick: 2 losses x 2 points, one population each) writes its
  report, plots and json; each point's β1/β2 reach its member's optimiser state."""
  from conftest import load_state  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'results'
  proc = subprocess.run(
      [sys.executable, 'experiments/search_losses.py', '--quick', f'--out={out}',
       f'--data_dir={tmp_path / "tfds"}'], cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = (out / 'search_losses.md').read_text()
  for name in ('search_fid.png', 'search_curves.png', 'search_samples.png'):
    assert (out / name).stat().st_size > 1000, name
  results = json.loads((out / 'search_losses.json').read_text())
  points = results['points']
  assert len(points) == 2 and len({(p['g_lr'], p['b1']) for p in points}) == 2
  assert set(results['losses']) == {'classic (non-saturating)', 'wgan-gp'}
  for variant, entry in results['losses'].items():
    assert f'| {variant} | **' in report  # its row of the results table
    assert [m['point'] for m in entry['search']] == [0, 1]
    assert all(m['fid'] > 0 and m['curve'] for m in entry['search']), variant
    assert entry['best_point'] in (0, 1)
    (run,) = entry['runs'].values()  # quick: one n_dis, so one population per loss
    assert len({m['state_digest'] for m in run['members']}) == 2
    workdir = out / os.path.dirname(os.path.dirname(next(iter(run['samples'].values()))))
    hyper = load_state(workdir)['members']['g_opt']['hyperparams']
    for beta in ('b1', 'b2'):
      assert hyper[beta].tolist() == pytest.approx([p[beta] for p in points]), beta
