"""Sample pictures: image grids and 2D scatters over the true modes."""

from __future__ import annotations

import math
import os

import numpy as np


def save_image_grid(path: str, images: np.ndarray, max_images: int = 64) -> None:
  """NHWC images in [-1, 1] -> one PNG grid (upscaled so small images stay visible)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = np.asarray(images[:max_images])
  n, h, w, c = images.shape
  cols = math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), -1.0, np.float32)
  for i, img in enumerate(images):
    r, q = divmod(i, cols)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + q * (w + 1):1 + q * (w + 1) + w] = img
  pixels = np.clip((grid + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
  scale = max(1, 256 // max(grid.shape[:2]))
  pil = Image.fromarray(pixels.squeeze(-1) if c == 1 else pixels)
  pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pil.save(path)


def save_scatter(path: str, samples: np.ndarray, centers: np.ndarray, title: str = '') -> None:
  """Generated 2D points over the mixture's modes."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
  ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, label='generated')
  ax.scatter(centers[:, 0], centers[:, 1], s=30, c='red', marker='x', label='modes')
  lim = 1.5 * float(np.max(np.abs(centers))) + 0.5
  ax.set_xlim(-lim, lim)
  ax.set_ylim(-lim, lim)
  ax.set_aspect('equal')
  ax.set_title(title, fontsize=9)
  ax.legend(loc='upper right', fontsize=7)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, bbox_inches='tight')
  plt.close(fig)
