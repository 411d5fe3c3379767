"""The default run (plain ./run.sh: configs/packed_ring.py) covers the ring, on 2 seeds."""

from configs import packed_ring
from ganjax import main, train


def test_default_config_covers_every_mode_on_a_shortened_schedule(tmp_path):
  # A quarter of the schedule: measured 8/8 modes on 4 of 4 seeds, EMA generator 51-68%
  # high quality (it reaches 94.5-97.2% at the full 20,000 steps).
  config = packed_ring.get_config()
  config.update_from_flattened_dict({'steps': 5000, 'population': 2, 'log_every': 1000,
                                     'eval_every': 5000, 'checkpoint_every': 5000})
  summary = train.train_and_evaluate(config, str(tmp_path / 'run'))
  for member in summary['members']:
    assert member['ema_modes'] == 8 and member['modes'] == 8, member
    assert member['ema_hq_fraction'] > 0.3, member


def test_the_last_line_puts_the_run_beside_the_published_row():
  line = main._mode_line({'dataset': 'ring', 'modes': 7, 'hq_fraction': 0.5, 'ema_modes': 8,  # pylint: disable=protected-access
                          'ema_hq_fraction': 0.934})
  assert line == ('modes 8/8, high quality 93% (EMA generator) '
                  '(PacGAN Table 1, GAN: 6.3/8 modes, 98.2%)')
  assert main._mode_line({'dataset': 'grid', 'modes': 20, 'hq_fraction': 0.9}).startswith(  # pylint: disable=protected-access
      'modes 20/25, high quality 90% (PacGAN')
