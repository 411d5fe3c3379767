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

import errno
import importlib
import logging as std_logging
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import losses, workdir as workdir_lib
from ganjax.checkpoint import DiskFullError, NoUsableCheckpointError, is_disk_full

_DEFAULT_CONFIG = 'configs/packed_ring.py'
# No default here: a default is parsed, with the --config.FIELD overrides, when the flag is
# defined (at import, before any error can be reported); `_parse_flags` supplies it instead.
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, f'Config file (default {_DEFAULT_CONFIG}); override fields with '
    '--config.FIELD=VALUE.')
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
                NoUsableCheckpointError, workdir_lib.WorkdirBusyError, DiskFullError)


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of Orbax and TFDS (each save logs ~30 lines)."""

  def filter(self, record):
    noisy = any(f'/{lib}/' in record.pathname for lib in ('orbax', 'tensorflow_datasets'))
    if noisy and is_disk_full(record.exc_info[1] if record.exc_info else None):
      return False  # Orbax's threads each log a full disk; the run's error line says it once
    return record.levelno >= std_logging.WARNING or not noisy


class _LogFile(std_logging.FileHandler):
  """train.log: on a full disk a line is lost without printing a traceback for each line
  (the run's error line reports the full disk)."""

  def handleError(self, record):
    if not is_disk_full(sys.exc_info()[1]):
      super().handleError(record)


def _request_deterministic_gpu_ops() -> None:
  """Asks XLA:GPU for run-to-run deterministic kernels; must run before JAX starts a backend.

  On GPUs, reductions and scatters (atomics) and autotuned GEMM/convolution choices can
  differ between runs, so a resumed run would not be bitwise equal to an uninterrupted one.
  `--xla_gpu_deterministic_ops=true` is XLA's switch for this: its help text in jaxlib 0.10.2
  reads "Guarantees run-to-run determinism on GPU"; it implies
  `--xla_gpu_exclude_nondeterministic_ops` and also turns autotuning off (openxla/xla#12520),
  so GPU steps may be slower. It is the setting recommended in jax-ml/jax discussion #10674;
  JAX 0.10.2 has no config option for it (none of `jax.config`'s options is about
  determinism). XLA parses XLA_FLAGS once, when the first backend starts, and importing
  ganjax, a config file or flags starts none. The CPU accepts and ignores the flag (jaxlib
  aborts on an unknown XLA flag; this one runs). A setting the user made, e.g.
  `XLA_FLAGS=--xla_gpu_deterministic_ops=false` for speed, is kept.
  """
  current = os.environ.get('XLA_FLAGS', '')
  if 'xla_gpu_deterministic_ops' not in current:
    os.environ['XLA_FLAGS'] = f'{current} --xla_gpu_deterministic_ops=true'.strip()


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
  log_file = _LogFile(os.path.join(workdir, 'train.log'))
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
    train.resolve_config(config)  # a bad value fails here, before the workdir is written
    train.check_workdir(workdir)
    # Before train.log is opened; train_and_evaluate takes it again (re-entrant).
    with workdir_lib.lock(workdir, enabled=jax.process_index() == 0):
      _log_to_file(workdir, jax.process_index() == 0)
      summary = train.train_and_evaluate(config, workdir)
  except _USER_ERRORS as e:
    sys.exit(f'error: {e}')
  except OSError as e:  # a full disk while writing logs, samples or eval.json
    if e.errno != errno.ENOSPC:
      raise
    sys.exit(f'error: no space left on device writing {e.filename or workdir}; free space '
             'and rerun the same command to resume from the last checkpoint.')
  if jax.process_index() != 0:
    return
  where = os.path.abspath(workdir)
  if summary.get('preempted'):
    print(f'Preempted: saved step {summary["step"]}; rerun the same command to resume from '
          f'{where}.')
    return
  keys = [k for k in ('d_loss', 'g_loss') if k in summary]
  print(f'Done: step {summary["step"]}, ' + ', '.join(f'{k}={summary[k]:.4g}' for k in keys))
  if 'modes' in summary:
    print(_mode_line(summary))
  print(f'Outputs in {where}: eval.json, samples/, checkpoints/, train.log, TensorBoard '
        f'events (tensorboard --logdir {where}).')


def _mode_line(summary: dict) -> str:
  """``modes 8/8, high quality 96% (PacGAN Table 1, GAN: ...)``: the EMA generator's when
  there is one, beside the published row of its mixture."""
  from ganjax import data  # pylint: disable=g-import-not-at-top
  mixture = data.get(summary['dataset'])
  ema = 'ema_modes' in summary
  modes, hq = (summary['ema_modes'], summary['ema_hq_fraction']) if ema else (
      summary['modes'], summary['hq_fraction'])
  return (f'modes {modes}/{len(mixture.centers)}, high quality {hq:.0%}'
          + (' (EMA generator)' if ema else '')
          + (f' ({mixture.reference})' if mixture.reference else ''))


def _parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing, with bad flags reported in one line and exit status 1.

  A value that does not parse (``--config.steps=abc``), an unknown field, a
  config file that cannot be loaded: ``error: --config.FIELD=VALUE: why``.
  Values that parse are checked later, by `ganjax.resolve.resolve_config`.
  """
  if not any(re.match(r'--?config(=|$)', a) for a in argv[1:]):
    argv = argv[:1] + [f'--config={_DEFAULT_CONFIG}'] + argv[1:]
  try:
    remaining = flag_values(argv)
    getattr(flag_values['config'].value, 'name', None)  # a config file that failed to load
    return remaining                                    # raises when first used
  except (flags.Error, AttributeError, KeyError, OSError, TypeError, ValueError) as e:
    sys.exit(f'error: {flag_error(e, argv)}')


def flag_error(e: Exception, argv: list[str]) -> str:
  """One line for an error raised while parsing `argv`, naming the flag."""
  text = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
  text = text.replace("\\'", "'").replace('\\n', '\n')  # a KeyError's repr inside
  unknown = re.search(r"'([\w-]+)'(?:\s+Did you mean \"(\w+)\")?", text)
  if isinstance(e, (AttributeError, KeyError)) and unknown:
    name, close = unknown.groups()
    path = next((a.split('=', 1)[0] for a in argv if a.startswith('--config.')
                 and name in a.split('=', 1)[0].split('.')), f'--config.{name}')
    return f'{path}: no such config field' + (f'; did you mean {close}?' if close else '.')
  # Multi-line messages (a config file that fails to load or raises): first and last line.
  lines = [line.strip() for line in text.splitlines() if line.strip()] or [repr(e)]
  text = lines[0] if len(lines) == 1 else f'{lines[0].rstrip(":")}: {lines[-1]}'
  text = re.sub(r": \('([^']*)', (.*)\)$", r': \1: \2', text)  # absl's tuple messages
  if text.startswith('flag --'):
    return text[len('flag '):]
  if isinstance(e, OSError) and not isinstance(e, flags.Error):
    config = next((a for a in argv if re.match(r'--?config=', a)), '--config')
    return f'{config}: cannot load it: {lines[-1]}'
  return text


if __name__ == '__main__':
  _request_deterministic_gpu_ops()
  app.run(main, flags_parser=_parse_flags)
