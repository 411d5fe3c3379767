"""Command line: flags -> config -> `train_and_evaluate(config, workdir)`.

    python -m ganjax.main --config=configs/ring.py --loss=hinge --workdir=runs/x
    python -m ganjax.main --config=configs/digits.py --config.steps=500

Rerunning the same command with the same --workdir resumes from its latest
checkpoint.
"""

import logging as std_logging
import os

from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import losses

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/ring.py', 'Config file; override fields with --config.FIELD=VALUE.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory (default runs/<config name>).')
_LOSS = flags.DEFINE_enum('loss', None, list(losses.names()), 'Overrides config.loss.')


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of Orbax and TFDS (each save logs ~30 lines)."""

  def filter(self, record):
    noisy = any(f'/{lib}/' in record.pathname for lib in ('orbax', 'tensorflow_datasets'))
    return record.levelno >= std_logging.WARNING or not noisy


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from ganjax import train  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  if _LOSS.value:
    config.loss = _LOSS.value
  workdir = _WORKDIR.value or os.path.join('runs', config.get('name', 'default'))
  logging.get_absl_handler().addFilter(_QuietLibraries())
  os.makedirs(workdir, exist_ok=True)
  log_file = std_logging.FileHandler(os.path.join(workdir, 'train.log'))
  log_file.setFormatter(std_logging.Formatter('%(asctime)s %(levelname)s %(message)s'))
  log_file.addFilter(_QuietLibraries())
  logging.get_absl_logger().addHandler(log_file)
  summary = train.train_and_evaluate(config, workdir)
  where = os.path.abspath(workdir)
  if summary.get('preempted'):
    print(f'Preempted at step {summary["step"]}; rerun the same command to resume from {where}.')
    return
  keys = [k for k in ('modes', 'hq_fraction', 'd_loss', 'g_loss') if k in summary]
  print(f'Done: step {summary["step"]}, ' + ', '.join(f'{k}={summary[k]:.4g}' for k in keys))
  print(f'Outputs in {where}: eval.json, samples/, checkpoints/, TensorBoard events '
        f'(tensorboard --logdir {where}).')


if __name__ == '__main__':
  app.run(main)
