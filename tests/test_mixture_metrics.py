"""Tests for ganjax.mixture_metrics: the VEEGAN/PacGAN mode metrics, host float64 numpy."""

import math

import numpy as np
import pytest

from ganjax import evaluate
from ganjax.mixture_metrics import mode_metrics


def _ring(num_modes=8, radius=2.0):
  angles = 2 * np.pi * np.arange(num_modes) / num_modes
  return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def test_mode_metrics_hand_built():
  centers = _ring()
  std = 0.02
  samples = np.concatenate([
      np.repeat(centers[:1], 4, axis=0),                      # 4 hq on mode 0
      centers[1] + np.array([[0.05, 0.0], [0.0, -0.05]]),     # 2 hq on mode 1 (2.5 std)
      centers[2] + np.array([[0.0, 0.01], [0.01, 0.0]]),      # 2 hq on mode 2
      centers[2] + np.array([[0.07, 0.0], [0.0, 0.07]]),      # 2 near mode 2 at 3.5 std: not hq
      np.zeros((2, 2)),                                       # 2 in the middle: not hq
  ])
  out = mode_metrics(samples, centers, std)
  assert out['modes'] == 3
  assert isinstance(out['modes'], int)
  assert out['hq_fraction'] == pytest.approx(8 / 12)
  # q = (1/2, 1/4, 1/4): ½ log(½·8) + 2·¼ log(¼·8) = log 2 + ½ log 2.
  assert out['reverse_kl'] == pytest.approx(1.5 * math.log(2))
  # A looser threshold (4 std) admits the two 3.5-std samples on mode 2.
  loose = mode_metrics(samples, centers, std, threshold=4.0)
  assert loose['hq_fraction'] == pytest.approx(10 / 12)
  q = np.array([4, 2, 4]) / 10
  assert loose['reverse_kl'] == pytest.approx(float(np.sum(q * np.log(q * 8))))


def test_mode_metrics_uniform_collapsed_and_empty():
  centers = _ring()
  uniform = mode_metrics(np.repeat(centers, 3, axis=0), centers, 0.05)
  assert uniform == {'modes': 8, 'hq_fraction': 1.0, 'reverse_kl': pytest.approx(0.0, abs=1e-12),
                     'mode_distance': 0.0}
  collapsed = mode_metrics(np.repeat(centers[3:4], 5, axis=0), centers, 0.05)
  assert collapsed['modes'] == 1
  assert collapsed['reverse_kl'] == pytest.approx(math.log(8))
  empty = mode_metrics(np.zeros((10, 2)), centers, 0.05)
  assert empty == {'modes': 0, 'hq_fraction': 0.0, 'reverse_kl': pytest.approx(math.log(8)),
                   'mode_distance': pytest.approx(2 / 0.05)}  # every center is at radius 2


def test_mode_metrics_on_the_true_mixture_follow_the_rayleigh_law():
  # 2,500 samples of the 8-Gaussian ring itself: in 2-D, P(‖x - c‖ ≤ 3σ) = 1 - exp(-9/2).
  rng = np.random.default_rng(0)
  centers = _ring()
  std = 0.02
  samples = centers[rng.integers(0, 8, 2500)] + std * rng.normal(size=(2500, 2))
  out = mode_metrics(samples, centers, std)
  assert out['modes'] == 8
  assert out['hq_fraction'] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
  assert 0 <= out['reverse_kl'] < 0.01
  # Rayleigh mean: E‖x - c‖ = σ·sqrt(π/2).
  assert out['mode_distance'] == pytest.approx(math.sqrt(math.pi / 2), rel=0.03)


def test_mode_metrics_rejects_bad_arguments():
  centers = _ring()
  with pytest.raises(ValueError, match='same D'):
    mode_metrics(np.zeros((5, 3)), centers, 0.1)
  with pytest.raises(ValueError, match='std=0'):
    mode_metrics(np.zeros((5, 2)), centers, 0)
  with pytest.raises(ValueError, match='threshold=-1'):
    mode_metrics(np.zeros((5, 2)), centers, 0.1, threshold=-1)


def test_mode_metrics_compute_in_float64_whatever_the_input_type():
  # Float32 samples are converted to float64 before any arithmetic: the result equals
  # the float64 computation on the same values, bit for bit.
  rng = np.random.default_rng(1)
  centers = _ring()
  samples = (centers[rng.integers(0, 8, 500)] + 0.05 * rng.normal(size=(500, 2))).astype(np.float32)
  assert mode_metrics(samples, centers, 0.05) == mode_metrics(samples.astype(np.float64),
                                                              centers, 0.05)
  assert isinstance(mode_metrics(samples, centers, 0.05)['mode_distance'], float)


def test_mode_metrics_live_only_in_mixture_metrics():
  assert not hasattr(evaluate, 'mode_metrics')
