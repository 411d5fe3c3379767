"""What a finished run reports: ``eval.json`` (digests, last losses, final metrics)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ganjax import parallel
from ganjax.digest import digest


def member_params(members: Any, i: int) -> dict:
  """Member `i`'s parameters that its digest covers: generator, discriminator, EMA."""
  m = parallel.member(members, i)
  return {'g_params': m['g_params'], 'd_params': m['d_params'], 'ema': m['ema']}


def summarize(config, members_host: Any, final_step: int, last_metrics: dict | None,
              results: list[dict], preempted: bool, wall_time_s: float,
              earlier_s: float = 0.0) -> dict:
  """eval.json's content: the run, then one entry per member (merged in for one member).

  `last_metrics` are the last step's host metrics (None if no step ran);
  `results` the last evaluation's per-member scores (left out when preempted).
  `wall_time_s` is this sitting's training time; `train_time_s` adds the earlier sittings'
  `earlier_s` (a run resumed after preemption).
  """
  population = config.population
  summary = {'step': final_step, 'loss': config.loss, 'dataset': config.dataset,
             'population': population, 'preempted': preempted,
             'wall_time_s': round(wall_time_s, 2),
             'train_time_s': round(earlier_s + wall_time_s, 2),
             'state_digest': digest([member_params(members_host, i) for i in range(population)])}
  members = []
  for i in range(population):
    entry = {'member': i, 'seed': config.seed + i,
             'state_digest': digest(member_params(members_host, i)),
             'skipped_steps': int(members_host['skipped'][i])}
    if last_metrics is not None:
      entry.update({k: float(v[i]) for k, v in last_metrics.items() if k != 'finite'})
    if i < len(results) and not preempted:
      entry.update({k: v for k, v in results[i].items() if k not in ('member', 'seed')})
    members.append(entry)
  summary['members'] = members
  if population == 1:
    summary.update({k: v for k, v in members[0].items() if k != 'member'})
  return summary


def write(workdir: str, summary: dict) -> None:
  """Writes ``<workdir>/eval.json`` atomically."""
  path = os.path.join(workdir, 'eval.json')
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(summary, f, indent=2, default=_to_json)
  os.replace(tmp, path)


def _to_json(value):
  if isinstance(value, np.generic):
    return value.item()
  raise TypeError(f'{type(value).__name__} is not JSON serialisable')
