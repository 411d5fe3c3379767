"""Command line: flags -> config -> `train_and_evaluate(config, workdir)`.

    python -m ganjax.main --config=configs/ring.py --loss=hinge --workdir=runs/x
    python -m ganjax.main --config=configs/digits.py --config.steps=500

Rerunning the same command with the same --workdir resumes from its latest
checkpoint. Multi-host (one process per host, e.g. every worker of a TPU VM
pod slice): add --multihost; on CPU clusters and in tests give the coordinator
explicitly with --coordinator_address, --num_processes and --process_id.
Bad input is reported in one line (no traceback) with exit status 1.
`--imports=my_project.gan_parts` imports a module first, so that a loss,
penalty, model or dataset it registers can be named in the config.
"""

import importlib
import logging as std_logging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import losses
from ganjax.checkpoint import NoUsableCheckpointError

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/ring.py', 'Config file; override fields with --config.FIELD=VALUE.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory (default runs/<config name>).')
_LOSS = flags.DEFINE_string('loss', None, 'Overrides config.loss: a registered loss '
                            f'({", ".join(losses.names())}, or one an --imports module '
                            'registers).')
_IMPORTS = flags.DEFINE_list('imports', [], 'Modules to import before the config is read, '
                             'e.g. one that registers a loss, penalty, model or dataset.')
_MULTIHOST = flags.DEFINE_bool('multihost', False, 'Call jax.distributed.initialize() '
                               '(arguments from the TPU/cluster environment).')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0, for '
                                   'explicit multi-process runs (CPU clusters, tests).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'With --coordinator_address.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'With --coordinator_address.')

# Errors that mean "bad input or state": one line, no traceback.
_USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, FloatingPointError,
                NoUsableCheckpointError)


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of Orbax and TFDS (each save logs ~30 lines)."""

  def filter(self, record):
    noisy = any(f'/{lib}/' in record.pathname for lib in ('orbax', 'tensorflow_datasets'))
    return record.levelno >= std_logging.WARNING or not noisy


def _initialize_distributed() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  if _COORDINATOR.value:
    if _NUM_PROCESSES.value is None or _PROCESS_ID.value is None:
      raise ValueError('--coordinator_address needs --num_processes and --process_id.')
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU all-reduce
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  elif _MULTIHOST.value:
    jax.distributed.initialize()


def _log_to_file(workdir: str, is_chief: bool) -> None:
  quiet = _QuietLibraries()
  logging.get_absl_handler().addFilter(quiet)
  if not is_chief:
    logging.set_verbosity(logging.WARNING)
    return
  os.makedirs(workdir, exist_ok=True)
  log_file = std_logging.FileHandler(os.path.join(workdir, 'train.log'))
  log_file.setFormatter(std_logging.Formatter('%(asctime)s %(levelname)s %(message)s'))
  log_file.addFilter(quiet)
  logging.get_absl_logger().addHandler(log_file)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    _initialize_distributed()
    for module in _IMPORTS.value:
      try:
        importlib.import_module(module)
      except ModuleNotFoundError as e:
        raise ValueError(f'--imports={module}: {e}.') from None
    import jax  # pylint: disable=g-import-not-at-top
    from ganjax import train  # pylint: disable=g-import-not-at-top
    config = _CONFIG.value
    if _LOSS.value:
      config.loss = _LOSS.value
    workdir = _WORKDIR.value or os.path.join('runs', config.get('name', 'default'))
    train.check_workdir(workdir)
    _log_to_file(workdir, jax.process_index() == 0)
    summary = train.train_and_evaluate(config, workdir)
  except _USER_ERRORS as e:
    sys.exit(f'error: {e}')
  if jax.process_index() != 0:
    return
  where = os.path.abspath(workdir)
  if summary.get('preempted'):
    print(f'Preempted: saved step {summary["step"]}; rerun the same command to resume from '
          f'{where}.')
    return
  keys = [k for k in ('modes', 'hq_fraction', 'd_loss', 'g_loss') if k in summary]
  print(f'Done: step {summary["step"]}, ' + ', '.join(f'{k}={summary[k]:.4g}' for k in keys))
  print(f'Outputs in {where}: eval.json, samples/, checkpoints/, train.log, TensorBoard '
        f'events (tensorboard --logdir {where}).')


if __name__ == '__main__':
  app.run(main)
