"""Prepares a standard TFDS dataset as array_record (needs TensorFlow and the network).

    pip install -e ".[prepare]"
    python -m ganjax.prepare mnist --data_dir=~/tensorflow_datasets

Training reads the prepared files with ``tfds.data_source`` and needs neither
TensorFlow nor the network. ``digits`` prepares itself offline on first use.
"""

from absl import app, flags

from ganjax import data

_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory (default: '
                                '$TFDS_DATA_DIR or ~/tensorflow_datasets).')


def main(argv):
  choices = [n for n in data.names() if isinstance(data.get(n), data.TfdsImages)]
  if len(argv) != 2 or argv[1] not in choices:
    raise app.UsageError(f'usage: python -m ganjax.prepare NAME; NAME one of '
                         f'{", ".join(choices)}.')
  name, data_dir = argv[1], _DATA_DIR.value or data.default_data_dir()
  spec = data.get(name)
  if spec.prepare is not None:
    spec.prepare(data_dir)
  else:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    tfds.builder(spec.tfds_name, data_dir=data_dir,
                 file_format='array_record').download_and_prepare()
  print(f'prepared {name} under {data_dir}')


if __name__ == '__main__':
  app.run(main)
