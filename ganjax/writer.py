"""Metric writing: TensorBoard event files and a console progress line.

`clu.metric_writers` imports TensorFlow at import time, and training must not
need TensorFlow, so this writes event files with TensorBoard's own
`EventFileWriter` (pure Python) behind the same small interface
(`write_scalars`, `flush`, `close`).
"""

from __future__ import annotations

import time

from absl import logging
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class MetricWriter:
  """Scalars to TensorBoard (process 0 only) and a progress line to the log."""

  def __init__(self, logdir: str, total_steps: int, enabled: bool = True):
    self._writer = EventFileWriter(logdir) if enabled else None
    self._total = total_steps
    self._last = None  # (step, time) of the previous progress line

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    if self._writer is None:
      return
    values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
    self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=step,
                                           summary=summary_pb2.Summary(value=values)))

  def progress(self, step: int, scalars: dict[str, float]) -> str:
    """Logs ``step/total, steps/s, ETA`` and the scalars; returns the line."""
    now = time.time()
    rate = None
    if self._last is not None and step > self._last[0]:
      rate = (step - self._last[0]) / max(now - self._last[1], 1e-9)
    self._last = (step, now)
    parts = [f'step {step}/{self._total}']
    if rate:
      eta = (self._total - step) / rate
      parts.append(f'{rate:.1f} steps/s, ETA {time.strftime("%H:%M:%S", time.gmtime(eta))}')
    parts += [f'{k}={v:.4g}' for k, v in scalars.items()]
    line = ' | '.join(parts[:2]) + (' | ' if len(parts) > 2 else '') + ' '.join(parts[2:])
    logging.info('%s', line)
    if rate:
      self.write_scalars(step, {'steps_per_sec': rate})
    return line

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
