"""A row of experiments/reproduce_2d.py trained in parts: members [a, b) of its population.

Member i of a population trains from seed ``seed + i`` on the data stream ``data_seed``,
apart from the other members (ganjax/step.py), so members [a, b) of a row are the
population of b - a members starting at seed ``seed + a``: its runs are the row's runs
(tests/test_row_parts.py). A machine that cannot finish a row in one sitting (a 2-core CPU
and a row of several hours) runs it a part at a time; each finished part is stored in
``reproduce_2d_parts.json`` beside the results, and once stored parts cover every member
exactly once, the row is assembled from them as if it had run whole.

    taskset -c 0 .venv/bin/python experiments/reproduce_2d.py --rows KEY --members 0 1 &
    taskset -c 1 .venv/bin/python experiments/reproduce_2d.py --rows KEY --members 1 2

Imports no JAX: it only combines stored results.
"""

from __future__ import annotations

import json
import os

import numpy as np

from experiments.compare_losses import mean_se

PARTS_FILE = 'reproduce_2d_parts.json'
METRICS = ('modes', 'hq_fraction', 'reverse_kl')
HARDWARE_SEPARATOR = '; '


def part_key(row_key: str, members) -> str:
  """The key of members [a, b) of row `row_key` in the parts file: ``row_key#a-b``."""
  return '{}#{}-{}'.format(row_key, *members)


def row_of(key: str) -> str:
  """The row key of a stored key, a part's (``row_key#a-b``) or a whole row's."""
  return key.partition('#')[0]


def load(path: str) -> dict:
  """The rows stored in the results file `path`, by key ``table/row/dataset`` (a part of a
  row, in the parts file: ``table/row/dataset#a-b``)."""
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return {_key(r): r for r in json.load(f)}


def _key(result: dict) -> str:
  key = f'{result["table"]}/{result["row"]}/{result["dataset"]}'
  return part_key(key, result['members']) if 'members' in result else key


def joined_hardware(hardware) -> str:
  """The hardware of a row assembled from parts: each part's device once, in order."""
  return HARDWARE_SEPARATOR.join(dict.fromkeys(hardware))


def devices(hardware: str) -> list[str]:
  """The devices a row's hardware string names (a row from parts: several)."""
  return hardware.split(HARDWARE_SEPARATOR)


def summarize(per_seed: list[dict], along_per_seed: dict) -> dict:
  """A row's mean ± s.e. over its seeds: final (``ganjax``; HQ in percent) and at each
  evaluation (``along_training``), from the per-seed values."""
  final = {name: [s[metric] for s in per_seed]
           for name, metric in (('modes', 'modes'), ('hq', 'hq_fraction'),
                                ('reverse_kl', 'reverse_kl'))}
  final['hq'] = 100 * np.asarray(final['hq'])
  return {'ganjax': {k: mean_se(v) for k, v in final.items()},
          'along_training': {step: {'modes': mean_se(at['modes']),
                                    'hq': mean_se(100 * np.asarray(at['hq_fraction']))}
                             for step, at in along_per_seed.items()}}


def cover(parts: list[dict], seeds: int) -> list[dict] | None:
  """Parts whose members chain from 0 to `seeds` (each member once, in order), or None.
  Where stored parts split the row in more than one way, any complete chain will do."""
  by_start = {}
  for part in parts:
    by_start.setdefault(part['members'][0], []).append(part)

  def chain(start):
    if start == seeds:
      return []
    for part in by_start.get(start, ()):
      rest = chain(part['members'][1])
      if rest is not None:
        return [part] + rest
    return None
  return chain(0)


def assemble(parts: list[dict], seeds: int, recipe: dict) -> dict | None:
  """The result of a row of `seeds` members and recipe `recipe` from its parts (fresh ones:
  the caller checks), or None while a member is missing. Without the row's names: the
  caller labels it."""
  chain = cover(parts, seeds)
  if chain is None:
    return None
  return {'seeds': seeds, 'recipe': recipe, **_joined(chain)}


def progress(parts: list[dict]) -> dict | None:
  """What the stored parts of a row not yet complete show so far: the parts that share no
  member (by first member), joined as `assemble` joins them, with ``members`` (those that
  have run) and ``seeds`` (how many); None where no part is stored."""
  chosen, taken = [], set()
  for part in sorted(parts, key=lambda p: p['members']):
    members = set(range(*part['members']))
    if not members & taken:
      chosen.append(part)
      taken |= members
  if not chosen:
    return None
  return {'seeds': len(taken), 'members': sorted(taken), **_joined(chosen)}


def _joined(chain: list[dict]) -> dict:
  """Parts' runs as one population's: per-seed values in the parts' order, summaries, the
  steps, hardware and wall time."""
  per_seed = [s for part in chain for s in part['per_seed']]
  # The steps every part was scored at (a rescored part lacks those whose checkpoints
  # were gone).
  along = {step: {m: [v for part in chain for v in part['along_per_seed'][step][m]]
                  for m in METRICS}
           for step in chain[0]['along_per_seed']
           if all(step in part['along_per_seed'] for part in chain)}
  return {'steps': chain[0]['steps'],
          'hardware': joined_hardware(part['hardware'] for part in chain),
          'wall_time_s': round(sum(part['wall_time_s'] for part in chain), 1),
          'parts': [{k: part[k] for k in ('members', 'hardware', 'wall_time_s', 'rescored')
                     if k in part} for part in chain],
          'per_seed': per_seed, 'along_per_seed': along, **summarize(per_seed, along)}


def stored_members(parts: dict, row_key: str) -> list[list[int]]:
  """The member ranges of `row_key` among stored `parts` (keyed by ``row_key#a-b``)."""
  return sorted(p['members'] for k, p in parts.items() if row_of(k) == row_key)
