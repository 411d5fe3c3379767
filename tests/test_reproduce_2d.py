"""The 2D reproduction experiment runs end to end (its --quick mode) and writes its report."""

import json

from experiments import reproduce_2d


def test_rows_cover_the_published_tables_and_the_beyond_grid():
  rows = reproduce_2d.all_rows()
  keys = {r.key for r in rows}
  for row in ('GAN', 'PacGAN2', 'PacGAN3', 'PacGAN4'):
    assert {f'PacGAN T1/{row}/ring', f'PacGAN T1/{row}/grid'} <= keys
  assert {'VEEGAN T1/GAN/ring', 'VEEGAN T1/Unrolled GAN/grid', 'GDPP T1/WGAN-GP/ring'} <= keys
  assert len([r for r in rows if r.table == 'beyond']) == 36  # 6 variants x 3 methods x 2 data
  pacgan4 = dict(next(r for r in rows if r.key == 'PacGAN T1/PacGAN4/grid').overrides)
  assert pacgan4 == {'pack': 4, 'batch_size': 400, 'train_size': 400_000}  # 100 packs a step


def test_verdicts_use_combined_standard_errors():
  published = {'modes': (7.8, 0.1), 'hq': (95.9, 1.4)}
  ok, z = reproduce_2d.verdict(published, {'modes': (7.6, 0.1), 'hq': (93.5, 0.5)})
  assert ok == 'reproduced' and abs(z['modes'] + 1.41) < 0.01
  bad, _ = reproduce_2d.verdict(published, {'modes': (7.2, 0.1), 'hq': (95.0, 0.5)})
  assert bad == 'not reproduced'
  # No published s.e. (VEEGAN): ganjax's alone; HQ within 3 points passes.
  ok, _ = reproduce_2d.verdict({'modes': (7.6, None), 'hq': (35.6, None)},
                               {'modes': (7.4, 0.2), 'hq': (38.0, 0.5)})
  assert ok == 'reproduced'


def test_quick_run_writes_the_report(tmp_path):
  reproduce_2d.main(['--quick', f'--out={tmp_path}'])
  results = json.loads((tmp_path / 'reproduce_2d.json').read_text())
  assert [(r['table'], r['row']) for r in results] == [('PacGAN T1', 'PacGAN2'),
                                                       ('beyond', 'hinge, unroll 5')]
  for r in results:
    assert r['seeds'] == 2 and len(r['per_seed']) == 2 and r['steps'] == 40
    assert list(r['along_training']) == ['10', '20', '30', '40']
    assert 'cpu' in r['hardware'].lower() or r['hardware']
  assert results[0]['verdict'] in ('reproduced', 'not reproduced')
  report = (tmp_path / 'reproduce_2d.md').read_text()
  assert 'Quick mode' in report and '| PacGAN T1 | PacGAN4 | grid | 24.8 ± 0.2 | not run |' in report
  # A rerun reuses the stored rows.
  reproduce_2d.main(['--quick', f'--out={tmp_path}'])
  assert json.loads((tmp_path / 'reproduce_2d.json').read_text()) == results
