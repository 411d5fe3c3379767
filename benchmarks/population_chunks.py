"""Population cost on the CPU: one member vs N members with chunks of 1, 4 and N (one vmap).

All variants are compiled in one process and timed in interleaved repetitions
(benchmarks/NOTES.md, section 10), so machine noise hits them alike:

    .venv/bin/python benchmarks/population_chunks.py mlp 16 10       # model N steps-per-rep
    .venv/bin/python benchmarks/population_chunks.py dcgan32 16 2
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

from benchmarks import cases as bench_cases  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(model: str, n: int, steps: int, reps: int = 5) -> None:
  runs = {'population 1': bench_cases.JaxStep(model, population=1)}
  for chunk in sorted({1, 4, n}):
    runs[f'population {n}, chunk {chunk}'] = bench_cases.JaxStep(
        model, population=n, overrides={'population_chunk': chunk})
  for run in runs.values():
    run.blocking_step()
    run.blocking_step()
  times = {name: [] for name in runs}
  for _ in range(reps):
    for name, run in runs.items():
      t = time.perf_counter()
      for _ in range(steps):
        run.blocking_step()
      times[name].append((time.perf_counter() - t) / steps * 1e3)
  base = bench_cases.median(times['population 1'])
  for name, ms in times.items():
    m = bench_cases.median(ms)
    print(f'{name}: {m:.2f} ms per step, {m / base:.2f}x one member '
          f'(reps {", ".join(f"{x:.1f}" for x in ms)})')


if __name__ == '__main__':
  main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
