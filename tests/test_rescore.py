"""A stored run whose scoring settings changed is rescored from its kept checkpoints
(`experiments/reproduce_2d.py --rescore`, `ganjax.train.evaluate_checkpoints`)."""

import copy
import json

import pytest

from experiments import reproduce_2d, row_parts

KEY = 'PacGAN T1/GAN/ring'  # recipe A: G's BatchNorm refreshed before sampling; --quick: 40 steps


def test_a_part_scored_the_old_way_is_rescored_from_its_checkpoints(tmp_path, capsys,
                                                                    monkeypatch):
  out = f'--out={tmp_path}'
  reproduce_2d.main(['--quick', '--rows', KEY, '--members', '0', '1', out])
  path = tmp_path / row_parts.PARTS_FILE
  ran = json.loads(path.read_text())[0]
  assert ran['recipe']['eval_bn_refresh'] == 50
  # As it was stored before eval_bn_refresh existed: another recipe, other numbers.
  old = copy.deepcopy(ran)
  del old['recipe']['eval_bn_refresh']
  old['per_seed'] = [{'modes': 0, 'hq_fraction': 0.0, 'reverse_kl': 9.0}]
  path.write_text(json.dumps([old]))
  monkeypatch.setattr(reproduce_2d, 'run_row', lambda *a, **k: pytest.fail('trained'))
  reproduce_2d.main(['--quick', '--rows', KEY, '--rescore', out])
  assert f'{KEY}#0-1: rescored at steps [20, 30, 40]' in capsys.readouterr().out
  new = json.loads(path.read_text())[0]
  # The kept checkpoints (3 of 4 evaluation steps) scored as the run scored them itself: the
  # same compiled sampler and refresh on the same saved state and noise, so equal on any one
  # machine (run on the CPU so far).
  assert new['recipe'] == ran['recipe'] and new['per_seed'] == ran['per_seed']
  assert new['along_per_seed'] == {s: ran['along_per_seed'][s] for s in ('20', '30', '40')}
  assert new['rescored']['changed'] == {'eval_bn_refresh': [0, 50]}
  assert new['ganjax'] == ran['ganjax']
  row = next(line for line in (tmp_path / 'reproduce_2d.md').read_text().splitlines()
             if line.startswith('| PacGAN T1 | GAN | ring |'))
  assert 'Members 0 scored again from their kept checkpoints' in row
  assert '| at 50/75/100%: ' in row  # the along-training column's heading says 25/50/75/100%
  # A recipe changed in a field that trains differently is not rescored: it must run again.
  path.write_text(json.dumps([{**old, 'recipe': {**old['recipe'], 'steps': 80}}]))
  reproduce_2d.main(['--quick', '--rows', KEY, '--rescore', out])
  assert 'fields that train differently (steps: 80 → 40' in capsys.readouterr().out
  assert json.loads(path.read_text())[0]['per_seed'] == old['per_seed']
