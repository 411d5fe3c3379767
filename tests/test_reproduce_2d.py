"""The 2D reproduction experiment runs end to end (its --quick mode) and writes its report."""

import json
import pathlib
import shutil
import sys
import threading
import time

import jax

from experiments import report_2d, reproduce_2d, row_parts, rows_2d
from ganjax import resolve


def test_rows_cover_the_published_tables_and_the_beyond_grid():
  rows = rows_2d.all_rows()
  keys = {r.key for r in rows}
  for row in ('GAN', 'PacGAN2', 'PacGAN3', 'PacGAN4'):
    assert {f'PacGAN T1/{row}/ring', f'PacGAN T1/{row}/grid'} <= keys
  assert {'VEEGAN T1/GAN/ring', 'VEEGAN T1/Unrolled GAN/grid', 'GDPP T1/WGAN-GP/ring'} <= keys
  assert len([r for r in rows if r.table == 'beyond']) == 36  # 6 variants x 3 methods x 2 data
  pacgan4 = dict(next(r for r in rows if r.key == 'PacGAN T1/PacGAN4/grid').overrides)
  # 100 packs a step, from 4 generator batches of 100 (G's batch norm per pack position)
  assert pacgan4 == {'pack': 4, 'batch_size': 400, 'train_size': 400_000, 'g_bn_groups': 4}


def test_every_row_is_a_valid_recipe_and_every_probe_says_what_it_changes():
  rows = rows_2d.all_rows()
  assert len({r.key for r in rows}) == len(rows)
  for row in rows:
    resolve.resolve_config(rows_2d.make_config(row, quick=False))  # raises on bad fields
  probes = [r for r in rows if r.table == 'probe']
  assert probes and all(r.note and not r.published for r in probes)
  def recipe(row):
    return rows_2d.recipe(rows_2d.make_config(row, quick=False))
  by_key = {r.key: r for r in rows}
  for probe in probes:  # each differs from the row it probes in the fields it names only
    probed = recipe(by_key[probe.of])
    changed = {k for k, v in recipe(probe).items() if probed.get(k) != v}
    assert changed and changed <= {'penalty_weight', 'n_dis', 'update_order', 'dataset',
                                   'seed', 'data_seed', 'population'}, changed


def test_a_probe_that_only_adds_seeds_is_pooled_with_its_row():
  row = {'per_seed': [{'modes': 8, 'hq_fraction': 0.1}, {'modes': 6, 'hq_fraction': 0.3}]}
  more = {'overrides': {'seed': 5, 'data_seed': 1},
          'per_seed': [{'modes': 1, 'hq_fraction': 0.2}]}
  assert report_2d.pooled(more, row) == '. All 3 seeds: 5.0 ± 2.1 modes, 20.0 ± 5.8% HQ'
  assert report_2d.pooled(dict(more, overrides={'penalty_weight': 10.0}), row) == ''
  assert report_2d.pooled(more, None) == ''  # the probed row has not run
  # Settings the row and its probe share do not count as a change; others do, either way.
  unrolled = dict(row, overrides={'unroll_steps': 5})
  assert report_2d.pooled(dict(more, overrides={'unroll_steps': 5, 'seed': 5}), unrolled)
  assert report_2d.pooled(more, unrolled) == ''
  assert report_2d.pooled(dict(more, config='unrolled_grid'), row) == ''


def test_the_pytorch_section_sets_the_port_beside_all_of_a_rows_seeds(tmp_path):
  """ganjax's side of the PyTorch check pools the row's seeds with those a probe adds."""
  seed = lambda modes, hq: {'modes': modes, 'hq_fraction': hq}
  results = {
      'VEEGAN T1/GAN/ring': {'recipe': {'update_order': 'simultaneous'},
                             'per_seed': [seed(8, 0.1), seed(6, 0.3)]},
      'probe/VEEGAN GAN, 10 more seeds/ring': {'overrides': {'seed': 5, 'data_seed': 1},
                                               'per_seed': [seed(1, 0.2)]}}
  port = {'seeds': 2, 'steps': 40, 'per_seed': [[seed(8, 0.4)], [seed(7, 0.5)]],
          'summary': {'modes': [7.5, 0.5], 'hq': [45.0, 5.0]}}
  (tmp_path / report_2d.torch_result_name('ring', 'simultaneous')).write_text(
      json.dumps(port))
  lines = report_2d._torch_check(str(tmp_path), results, rows_2d.all_rows())  # pylint: disable=protected-access
  assert lines[-1] == ('| GAN | ring | simultaneous | 7.5 ± 0.5 | 45.0 ± 5.0 | 2, 40 | '
                       '5.0 ± 2.1 | 20.0 ± 5.8 | 3 | '
                       + report_2d.welch([10.0, 30.0, 20.0], [40.0, 50.0]) + ' |')
  results['VEEGAN T1/GAN/ring']['recipe']['update_order'] = 'alternating'  # another recipe
  assert report_2d._torch_check(str(tmp_path), results, rows_2d.all_rows())[-1].endswith(  # pylint: disable=protected-access
      '| 2, 40 |  |  |  |  |')  # four empty cells


def test_verdicts_use_combined_standard_errors():
  published = {'modes': (7.8, 0.1), 'hq': (95.9, 1.4)}
  ok, z = report_2d.verdict(published, {'modes': (7.6, 0.1), 'hq': (93.5, 0.5)})
  assert ok == 'reproduced' and abs(z['modes'] + 1.41) < 0.01
  bad, _ = report_2d.verdict(published, {'modes': (7.2, 0.1), 'hq': (95.0, 0.5)})
  assert bad == 'not reproduced'
  # No published s.e. (VEEGAN): ganjax's alone; HQ within 3 points passes.
  ok, _ = report_2d.verdict({'modes': (7.6, None), 'hq': (35.6, None)},
                               {'modes': (7.4, 0.2), 'hq': (38.0, 0.5)})
  assert ok == 'reproduced'


def test_quick_run_writes_the_report(tmp_path, monkeypatch):
  # The report needs neither PyTorch nor the PyTorch port (CI installs no torch).
  monkeypatch.setitem(sys.modules, 'torch', None)
  monkeypatch.setitem(sys.modules, 'experiments.recipe_b_torch', None)
  reproduce_2d.main(['--quick', f'--out={tmp_path}'])
  results = json.loads((tmp_path / 'reproduce_2d.json').read_text())
  assert [(r['table'], r['row']) for r in results] == [('PacGAN T1', 'PacGAN2'),
                                                       ('beyond', 'hinge, unroll 5')]
  for r in results:
    assert r['seeds'] == 2 and len(r['per_seed']) == 2 and r['steps'] == 40
    assert list(r['along_training']) == ['10', '20', '30', '40']
    assert f'({jax.devices()[0].platform})' in r['hardware'] and 'host cores' in r['hardware']
  assert results[0]['verdict'] in ('reproduced', 'not reproduced')
  report = (tmp_path / 'reproduce_2d.md').read_text()
  assert 'Quick mode' in report and '| PacGAN T1 | PacGAN4 | grid | 24.8 ± 0.2 | not run |' in report
  assert '| GDPP WGAN-GP, λ 10 | grid | λ 10 (Gulrajani' in report.split('## Probes')[1]
  # A rerun reuses the stored rows.
  reproduce_2d.main(['--quick', f'--out={tmp_path}'])
  assert json.loads((tmp_path / 'reproduce_2d.json').read_text()) == results


def test_writers_sharing_one_results_file_keep_each_others_rows(tmp_path):
  # Rows run side by side (e.g. pinned to different cores) share one --out: each adds its
  # row to what is on disk when it finishes, so none overwrites another's. The writers here
  # are threads: each opens the lock file itself, and flock locks belong to an open file, so
  # threads exclude each other as processes do (without the lock this test fails).
  path = str(tmp_path / 'reproduce_2d.json')
  row = lambda i: {'table': 'beyond', 'row': f'r{i}', 'dataset': 'ring', 'steps': i}

  def finish(i):
    with reproduce_2d.locked(path) as results:
      time.sleep(0.05)  # another writer would read the same file meanwhile
      results[f'beyond/r{i}/ring'] = row(i)

  threads = [threading.Thread(target=finish, args=(i,)) for i in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert sorted(json.loads((tmp_path / 'reproduce_2d.json').read_text()),
                key=lambda r: r['steps']) == [row(i) for i in range(4)]
  assert sorted(p.name for p in tmp_path.iterdir()) == ['reproduce_2d.json']  # no lock file
  assert reproduce_2d.load(path)['beyond/r2/ring'] == row(2)


def test_a_row_another_process_finished_meanwhile_is_not_run_again(tmp_path, monkeypatch):
  # Two processes given overlapping rows: the results are read again with every row written,
  # so a row the other process finished meanwhile is taken, not run twice.
  keys = ['beyond/hinge, unroll 5/ring', 'beyond/hinge, unroll 5/grid']
  rows = {r.key: r for r in rows_2d.all_rows()}
  path = str(tmp_path / 'reproduce_2d.json')

  def result(row):
    return {'table': row.table, 'row': row.row, 'dataset': row.dataset,
            'recipe': rows_2d.recipe(rows_2d.make_config(row, quick=False)),
            'ganjax': {'modes': [8.0, 0.0], 'hq': [30.0, 5.0]}, 'wall_time_s': 1.0}
  ran = []

  def run_row(row, out, quick, steps_per_call=1):
    ran.append(row.key)
    with reproduce_2d.locked(path) as results:  # the other process finishes the grid row
      results[keys[1]] = result(rows[keys[1]])
    return result(row)
  monkeypatch.setattr(reproduce_2d, 'run_row', run_row)
  monkeypatch.setattr(reproduce_2d, 'write_report', lambda *args: None)
  reproduce_2d.main(['--rows', *keys, f'--out={tmp_path}'])
  assert ran == keys[:1]
  assert sorted(reproduce_2d.load(path)) == sorted(keys)


def test_merge_takes_missing_and_stale_rows_and_keeps_fresh_ones(tmp_path, monkeypatch, capsys):
  rows = {r.key: r for r in rows_2d.all_rows()}
  keys = ['beyond/hinge, unroll 5/ring', 'beyond/hinge, unroll 5/grid', 'beyond/hinge, plain/ring']

  def result(key, hq, stale=False):
    config = rows_2d.make_config(rows[key], quick=False)
    if stale:
      config.update_order = 'alternating'
    return {'table': 'beyond', 'row': rows[key].row, 'dataset': rows[key].dataset,
            'recipe': rows_2d.recipe(config), 'ganjax': {'hq': [hq, 1.0]}}

  ours, theirs = tmp_path / 'ours', tmp_path / 'theirs'
  for folder, results in ((ours, [result(keys[1], 1.0, stale=True), result(keys[2], 2.0)]),
                          (theirs, [result(keys[0], 10.0), result(keys[1], 11.0),
                                    result(keys[2], 12.0), result(keys[2], 13.0, stale=True)
                                    | {'row': 'hinge, pack 4'}])):
    folder.mkdir()
    (folder / 'reproduce_2d.json').write_text(json.dumps(results))
  reports = []
  monkeypatch.setattr(reproduce_2d, 'write_report', lambda out, results, *a: reports.append(
      sorted(results)))
  reproduce_2d.main(['--merge', str(theirs / 'reproduce_2d.json'), f'--out={ours}'])
  merged = reproduce_2d.load(str(ours / 'reproduce_2d.json'))
  assert {k: r['ganjax']['hq'][0] for k, r in merged.items()} == {
      keys[0]: 10.0, keys[1]: 11.0, keys[2]: 2.0}  # missing and stale taken; fresh kept
  assert reports == [sorted(keys)]
  printed = capsys.readouterr().out
  assert f'{keys[2]}: a run of this recipe is stored, kept' in printed
  assert 'beyond/hinge, pack 4/ring: stale, not taken' in printed


def test_a_changed_recipe_makes_a_stored_row_stale_and_equal_recipes_share_one_run():
  rows = {r.key: r for r in rows_2d.all_rows()}
  gan = rows['VEEGAN T1/GAN/ring']
  config = rows_2d.make_config(gan, quick=False)
  stored = {'table': gan.table, 'row': gan.row, 'dataset': gan.dataset,
            'recipe': rows_2d.recipe(config),
            'ganjax': {'modes': [7.0, 0.3], 'hq': [50.0, 2.0], 'reverse_kl': [0.1, 0.01]},
            'published': {'modes': [1, None], 'hq': [99.3, None]}, 'verdict': 'not reproduced'}
  assert rows_2d.stale_fields(stored, gan) == {}
  assert stored['recipe']['steps'] == 25_000 and 'log_every' not in stored['recipe']
  config.update_order = 'alternating'  # what recipe B's rows ran with before the notebook's order
  before = dict(stored, recipe=rows_2d.recipe(config))
  assert rows_2d.stale_fields(before, gan) == {
      'update_order': ['alternating', 'simultaneous']}
  # The beyond table's minimax ring row is VEEGAN's GAN row: it takes that run's result,
  # without VEEGAN's published numbers; the hinge row is another recipe.
  minimax = rows['beyond/classic (minimax), plain/ring']
  assert reproduce_2d._same_recipe({gan.key: stored}, minimax) is stored
  assert reproduce_2d._same_recipe({gan.key: before}, minimax) is None
  assert reproduce_2d._same_recipe({gan.key: stored}, rows['beyond/hinge, plain/ring']) is None
  taken = reproduce_2d.reuse(stored, minimax)
  assert (taken['table'], taken['row'], taken['same_run_as']) == (
      'beyond', 'classic (minimax), plain', 'VEEGAN T1/GAN/ring')
  assert 'published' not in taken and 'verdict' not in taken
  assert taken['ganjax'] == stored['ganjax']
  # WGAN-GP's 5 critic updates alternate with G's, in GDPP's row and the beyond table alike.
  for key in ('GDPP T1/WGAN-GP/grid', 'beyond/wgan-gp, unroll 5/ring'):
    assert rows_2d.make_config(rows[key], quick=False).update_order == 'alternating'


def test_welch_t_test_of_the_torch_check():
  # Means 2 and 5, variances 1: t = -3 / sqrt(2/3) = -3.67 on 4 df, two-sided p 0.021.
  assert report_2d.welch([1, 2, 3], [4, 5, 6]) == '-3.67 (4.0), 0.02'
  assert report_2d.welch([8, 8], [8, 8, 8]) == '-'  # no spread: undefined
  assert report_2d.welch([1.0], [2.0, 3.0]) == '-'


def test_the_committed_results_give_the_committed_report(tmp_path):
  # The committed report is written from the committed json (and the PyTorch port's result
  # files and the stored parts beside it); written again it is the same, and its hardware
  # line names each device once, a row assembled from parts on several devices ('A; B')
  # included.
  here = pathlib.Path(reproduce_2d.__file__).parent / 'results'
  for beside in [*here.glob('recipe_b_torch_*.json'), here / row_parts.PARTS_FILE]:
    shutil.copy(beside, tmp_path)
  results = reproduce_2d.load(str(here / 'reproduce_2d.json'))
  assert any(len({p['hardware'] for p in r.get('parts', [])}) > 1 for r in results.values())
  report_2d.write_report(str(tmp_path), results, rows_2d.all_rows(), quick=False)
  ours = (tmp_path / 'reproduce_2d.md').read_text().splitlines()
  committed = (here / 'reproduce_2d.md').read_text().splitlines()
  del ours[2], committed[2]  # the time of writing
  assert ours == committed
  named = ours[-1].removeprefix('Hardware: ').removesuffix('.').split('; ')
  assert len(named) == len(set(named)) > 1
  # Each part's record names its own device; a row run whole, its row's; the parts of a row
  # in progress, theirs.
  parts = row_parts.load(str(here / row_parts.PARTS_FILE)).values()
  assert set(named) == {p['hardware'] for r in [*results.values(), *parts]
                        for p in r.get('parts', [r])}
