"""What may share a workdir: one run at a time, and one experiment per workdir.

**One run at a time.** `lock(workdir)` holds an exclusive ``flock`` on
``<workdir>/.lock`` for as long as a run uses the workdir, and writes the
holder (pid, host, start time) into it. A second run on the same workdir fails
at once with `WorkdirBusyError`, one line naming the workdir and that holder,
instead of writing into the same checkpoints. The lock belongs to the process
that took it: the kernel drops it when the process ends, however it ends
(SIGKILL, power loss), so a killed run never blocks the next one; the file
itself is left behind and means nothing on its own. Within a process the lock
is re-entrant (`ganjax.main` takes it before opening ``train.log`` and
`ganjax.train.train_and_evaluate`, which experiments and tests call directly,
takes it again). With several processes only process 0 takes it (callers pass
``enabled=jax.process_index() == 0``). On a network filesystem ``flock``
works across hosts where the filesystem supports it (NFS does, through POSIX
locks; gcsfuse does not lock at all).

**One experiment per workdir.** A checkpoint stores the resolved config that
wrote it. `config_changes` compares it with the current resolved config over
the fields that define the experiment (every field except `NOT_DEFINING`);
`check_resume` stops a resume that changes any of them with one line listing
``field: old → new``, unless ``allow_config_change`` is set.

Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import threading
from typing import Any, Iterator

LOCK_FILE = '.lock'

# Fields that only schedule or report a run: changing them on resume continues the same
# experiment. Every other field (including fields added later) defines the experiment.
NOT_DEFINING = frozenset({
    'steps',             # how long to train: raising it is why one resumes
    'log_every',         # progress lines and TensorBoard scalars only
    'eval_every',        # when samples and metrics are computed; they never touch the state
    'eval_samples',      # how many samples a metric uses (reporting)
    'eval_bn_refresh',   # G's BatchNorm statistics re-estimated for sampling, on a copy
    'image_metrics',     # whether image metrics are reported
    'feature_steps',     # the metrics' feature extractor (reporting; cached per setting)
    'kid_subsets',       # KID's estimator (reporting)
    'kid_subset_size',
    'features',          # the image metrics' feature space (reporting)
    'inception_weights',  # where that network's weights file is, like data_dir
    'final_eval_samples',  # a last FID after training (reporting)
    'checkpoint_every',  # when to save
    'keep_checkpoints',  # how many saves to keep
    'steps_per_call',    # same parameters as one step per call (tests/test_train.py)
    'population_chunk',  # same results however members are chunked (tests/test_train.py)
    'name',              # a label and the default workdir name
    'data_dir',          # where the same dataset is read from: the data may move
    'skip_nonfinite',    # a fault policy, not the objective: the non-finite error tells the
                         # user to rerun with it, which must resume; it changes nothing while
                         # steps are finite
    'allow_config_change',  # this override itself
})


class WorkdirBusyError(RuntimeError):
  """Another process holds the workdir's lock."""


class ConfigChangedError(ValueError):
  """A resume would continue a checkpoint with another experiment's config."""


# ------------------------------------------------------------------- lock --

_held: dict[str, list] = {}   # realpath -> [open file, depth]
_held_lock = threading.Lock()


@contextlib.contextmanager
def lock(workdir: str, enabled: bool = True) -> Iterator[None]:
  """Holds `workdir`'s exclusive lock (re-entrant within this process).

  Raises `WorkdirBusyError` at once if another process holds it. `workdir`
  must exist. ``enabled=False`` (processes other than 0) does nothing.
  """
  if not enabled:
    yield
    return
  key = os.path.realpath(workdir)
  with _held_lock:
    entry = _held.get(key)
    if entry is None:
      entry = _held[key] = [_acquire(workdir), 0]
    entry[1] += 1
  try:
    yield
  finally:
    with _held_lock:
      entry[1] -= 1
      if entry[1] == 0:
        del _held[key]
        entry[0].close()  # closing the only descriptor releases the flock


def holder(workdir: str) -> str:
  """Who holds (or last held) the lock, as the lock file says, in words."""
  try:
    with open(os.path.join(workdir, LOCK_FILE)) as f:
      info = json.loads(f.read() or '{}')
  except (OSError, ValueError):
    info = {}
  if not info:
    return 'a process that has not written its pid yet'
  return f'pid {info.get("pid")} on {info.get("host")} since {info.get("started")}'


def _acquire(workdir: str):
  path = os.path.join(workdir, LOCK_FILE)
  f = open(path, 'a+')  # never truncate before holding the lock: the holder's line is in it
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    f.close()
    raise WorkdirBusyError(
        f'workdir {os.path.abspath(workdir)} is in use by {holder(workdir)} (lock file '
        f'{path}); wait for that run to end or stop it, or use another --workdir.') from None
  except BaseException:
    f.close()
    raise
  f.seek(0)
  f.truncate()
  f.write(json.dumps({
      'pid': os.getpid(), 'host': socket.gethostname(),
      'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}) + '\n')
  f.flush()
  return f


# ------------------------------------------------------ config on resume --

def flatten(tree: dict, prefix: str = '') -> dict[str, Any]:
  """``{'a': {'b': 1}}`` -> ``{'a.b': 1}``; tuples become lists (as in JSON)."""
  flat = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      flat.update(flatten(v, f'{prefix}{k}.'))
    else:
      flat[prefix + k] = list(v) if isinstance(v, tuple) else v
  return flat


def config_changes(saved_json: str, current_json: str) -> dict[str, list]:
  """``{field: [old, new]}`` for every defining field whose value differs.

  Both configs are JSON (``ConfigDict.to_json()`` of resolved configs). A field
  present in only one of them (added to or removed from `configs/default.py`
  since the checkpoint was written) cannot be compared and is left out.
  """
  saved, current = (flatten(json.loads(s)) for s in (saved_json, current_json))
  return {k: [saved[k], current[k]] for k in sorted(saved.keys() & current.keys())
          if k.split('.')[0] not in NOT_DEFINING and saved[k] != current[k]}


def describe(changes: dict[str, list]) -> str:
  """``'loss: 'classic' → 'hinge', seed: 0 → 1'``."""
  return ', '.join(f'{k}: {old!r} → {new!r}' for k, (old, new) in changes.items())


def check_resume(meta: dict, current_json: str, allow: bool, where: str
                 ) -> dict[str, list]:
  """The changes of a resume from a checkpoint with `meta` (at `where`) to this config.

  Raises `ConfigChangedError` naming every changed defining field, unless
  `allow`. Returns them merged with those recorded in `meta`
  (``config_changes``: earlier allowed changes, so the run's record keeps its
  first value of each field). A checkpoint without a stored config (older
  versions) resumes unchecked.
  """
  if not meta.get('config'):
    return dict(meta.get('config_changes') or {})
  changes = config_changes(meta['config'], current_json)
  if changes and not allow:
    raise ConfigChangedError(
        f'the checkpoint at step {meta.get("step")} in {where} was trained with another '
        f'config: {describe(changes)}. Rerun with its config, use another --workdir, or '
        'pass --config.allow_config_change=True to continue it with this one.')
  merged = dict(meta.get('config_changes') or {})
  for k, (old, new) in changes.items():
    merged[k] = [merged[k][0] if k in merged else old, new]
  return merged
