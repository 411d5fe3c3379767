"""Recipe B's GAN and Unrolled GAN rows in PyTorch, written from the Unrolled GAN notebook
without ganjax.

    .venv/bin/python experiments/recipe_b_torch.py                        # 5 seeds x 25,000 steps
    .venv/bin/python experiments/recipe_b_torch.py --unroll 5             # the Unrolled GAN row
    .venv/bin/python experiments/recipe_b_torch.py --order alternating    # G after D's update
    .venv/bin/python experiments/recipe_b_torch.py --quick                # smoke test (the suite)

A rerun with more --seeds keeps the seeds its output file already holds and adds the rest;
the file is written after every seed.

An independent check of ganjax's recipe-B rows (experiments/reproduce_2d.py, VEEGAN T1 GAN):
the same recipe (poolio/unrolled_gan, "Unrolled GAN demo.ipynb"; configs/unrolled_ring.py
lists every setting and its source) in another framework, scored by the same metric
(`ganjax.mixture_metrics.mode_metrics`, 2,500 samples). Only the metric is ganjax's.

- Networks: z 256-d N(0, I); G 256-128-128-2 and D 2-128-128-1, tanh; orthogonal weights
  with gain 1.4, zero biases (the notebook's `slim.arg_scope`).
- Loss: D minimises `loss` = mean(softplus(-D(x)) + softplus(D(G(z)))); G minimises the
  negated game value, mean(-softplus(D(G(z)))) (saturating/minimax, `g_train_op` on `-loss`;
  the real term is constant in G).
- Unrolling (`--unroll k`): G minimises `-loss` at D after k more Adam updates of D on the
  same batch, from D's current Adam moments and step count, differentiated through them
  (the notebook's `graph_replace` of `d_opt.get_updates`, `unrolled_loss`); D's own update
  does not change.
- Adam: G 1e-3, D 1e-4, betas (0.5, 0.999), eps 1e-8; batch 512; fresh data each step.
- Order: `simultaneous` (the notebook's one `sess.run` of both train ops: both gradients at
  the same parameters, one batch); `alternating`: G's gradient after D's update, fresh z.
- Data: ganjax's ring (8 modes at angles 2πk/8, radius 1, std 0.01) or grid.

Writes ``<out>/recipe_b_torch_<dataset>_<order>[_unroll<k>].json``: per seed, modes / HQ /
reverse KL at 25, 50, 75 and 100% of the steps, and their mean ± standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=wrong-import-position
import torch  # pylint: disable=wrong-import-position
from torch import nn  # pylint: disable=wrong-import-position
from torch.nn import functional as F  # pylint: disable=wrong-import-position

from experiments.compare_losses import mean_se  # pylint: disable=wrong-import-position
from experiments.report_2d import torch_result_name  # pylint: disable=wrong-import-position
from ganjax import data, mixture_metrics  # pylint: disable=wrong-import-position

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def mlp(widths: list[int]) -> nn.Sequential:
  layers = []
  for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
    linear = nn.Linear(a, b)
    nn.init.orthogonal_(linear.weight, gain=1.4)
    nn.init.zeros_(linear.bias)
    layers += [linear] + ([nn.Tanh()] if i < len(widths) - 2 else [])
  return nn.Sequential(*layers)


def d_loss_at(disc, params, x, fake):
  """The notebook's `loss`: D's cross-entropy, at D's parameters `params` (name -> tensor)."""
  call = lambda inp: torch.func.functional_call(disc, params, (inp,))
  return (F.softplus(-call(x)) + F.softplus(call(fake))).mean()


def look_ahead(disc, d_opt, x, fake, k: int) -> dict:
  """D's parameters after `k` more Adam updates on this batch, from its current Adam state,
  as a graph G's gradient flows through (the notebook's `graph_replace` of D's update)."""
  group = d_opt.param_groups[0]
  lr, (b1, b2), eps = group['lr'], group['betas'], group['eps']
  names = [n for n, _ in disc.named_parameters()]
  params = [p for _, p in disc.named_parameters()]
  state = [d_opt.state.get(p, {}) for p in params]
  m = [s['exp_avg'] if s else torch.zeros_like(p) for s, p in zip(state, params)]
  v = [s['exp_avg_sq'] if s else torch.zeros_like(p) for s, p in zip(state, params)]
  t = int(state[0]['step']) if state[0] else 0
  for _ in range(k):
    grads = torch.autograd.grad(d_loss_at(disc, dict(zip(names, params)), x, fake), params,
                                create_graph=True)
    t += 1
    m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
    v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
    # torch.optim.Adam's update (the one D's real step takes), written out.
    params = [p - lr / (1 - b1 ** t) * mi / ((vi / (1 - b2 ** t)).sqrt() + eps)
              for p, mi, vi in zip(params, m, v)]
  return dict(zip(names, params))


def train_step(gen, disc, g_opt, d_opt, x, z, order: str, unroll: int = 0, z_g=None):
  """One iteration on real batch `x` and noise `z`: D's update and G's, both gradients at
  the same parameters ('simultaneous', the notebook's one `sess.run` of both train ops) or
  G's after D's update on fresh noise `z_g` ('alternating')."""
  def g_loss(fake):
    if unroll:  # the notebook's G: minimise -loss at D after `unroll` look-ahead updates
      return -d_loss_at(disc, look_ahead(disc, d_opt, x, fake, unroll), x, fake)
    return -F.softplus(disc(fake)).mean()  # -loss less its real term, constant in G

  fake = gen(z)
  d_loss = d_loss_at(disc, dict(disc.named_parameters()), x, fake.detach())
  d_grads = torch.autograd.grad(d_loss, list(disc.parameters()))
  if order == 'simultaneous':
    g_grads = torch.autograd.grad(g_loss(fake), list(gen.parameters()))
  for p, g in zip(disc.parameters(), d_grads):
    p.grad = g
  d_opt.step()
  if order == 'alternating':
    g_grads = torch.autograd.grad(g_loss(gen(z_g)), list(gen.parameters()))
  for p, g in zip(gen.parameters(), g_grads):
    p.grad = g
  g_opt.step()


def train_seed(seed: int, centers: np.ndarray, std: float, steps: int, order: str,
               hidden: int = 128, z_dim: int = 256, batch: int = 512,
               unroll: int = 0) -> list[dict]:
  """One run; the metrics at 25/50/75/100% of `steps`."""
  torch.manual_seed(seed)
  rng = np.random.default_rng(seed)
  gen, disc = mlp([z_dim, hidden, hidden, 2]), mlp([2, hidden, hidden, 1])
  g_opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-8)
  d_opt = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.999), eps=1e-8)
  means = torch.as_tensor(centers, dtype=torch.float32)
  points, out = {steps * q // 4 for q in (1, 2, 3, 4)}, []

  def real_batch():
    k = torch.as_tensor(rng.integers(len(centers), size=batch))
    return means[k] + std * torch.randn(batch, 2)

  for step in range(1, steps + 1):
    x, z = real_batch(), torch.randn(batch, z_dim)
    z_g = torch.randn(batch, z_dim) if order == 'alternating' else None
    train_step(gen, disc, g_opt, d_opt, x, z, order, unroll, z_g)
    if step in points:
      with torch.no_grad():
        samples = gen(torch.randn(2500, z_dim)).numpy()
      metrics = mixture_metrics.mode_metrics(samples, centers, std)
      out.append({'step': step, **{k: metrics[k] for k in ('modes', 'hq_fraction',
                                                            'reverse_kl')}})
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--dataset', choices=('ring', 'grid'), default='ring')
  parser.add_argument('--order', choices=('simultaneous', 'alternating'), default='simultaneous')
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--steps', type=int, default=25_000)
  parser.add_argument('--unroll', type=int, default=0,
                      help="look-ahead D updates in G's loss (5: the Unrolled GAN row)")
  parser.add_argument('--quick', action='store_true', help='2 seeds x 40 steps, width 16')
  parser.add_argument('--out', default=OUT)
  args = parser.parse_args(argv)
  if args.seeds < 1 or args.steps < 4 or args.unroll < 0:
    parser.error(f'need --seeds >= 1, --steps >= 4 and --unroll >= 0; got {args.seeds}, '
                 f'{args.steps}, {args.unroll}.')
  seeds, steps = (2, 40) if args.quick else (args.seeds, args.steps)
  torch.set_num_threads(1)
  mixture = data.Dataset(args.dataset, 1).mixture
  centers, std = np.asarray(mixture.centers), float(mixture.std)
  row = f'Unrolled GAN row (unroll {args.unroll})' if args.unroll else 'GAN row'
  result = {'recipe': f'B (Unrolled GAN notebook), {row}, PyTorch', 'dataset': args.dataset,
            'order': args.order, 'unroll': args.unroll, 'seeds': 0, 'steps': steps,
            'torch': torch.__version__, 'wall_time_s': 0.0, 'summary': {}, 'per_seed': []}
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, torch_result_name(args.dataset, args.order, args.unroll))
  if os.path.exists(path):  # seeds 0..n-1 done before: keep them, run the rest
    with open(path) as f:
      done = json.load(f)
    if done['steps'] != steps:
      parser.error(f'{path} holds {done["steps"]:,}-step runs, not {steps:,}: move it or '
                   'pass another --out.')
    result.update({k: done[k] for k in ('seeds', 'per_seed', 'wall_time_s', 'summary', 'torch')})
    print(f'{path}: seeds 0-{len(done["per_seed"]) - 1} done, kept', flush=True)
  for seed in range(len(result['per_seed']), seeds):
    start = time.time()
    runs = result['per_seed'] + [train_seed(seed, centers, std, steps, args.order,
                                            hidden=16 if args.quick else 128,
                                            unroll=args.unroll)]
    result.update(seeds=len(runs), per_seed=runs, torch=torch.__version__,
                  wall_time_s=round(result['wall_time_s'] + time.time() - start, 1),
                  summary={'modes': mean_se([r[-1]['modes'] for r in runs]),
                           'hq': mean_se([100 * r[-1]['hq_fraction'] for r in runs]),
                           'reverse_kl': mean_se([r[-1]['reverse_kl'] for r in runs])})
    with open(path + '.tmp', 'w') as f:  # after every seed: a cut-off loses one seed at most
      json.dump(result, f, indent=1)
    os.replace(path + '.tmp', path)
    last = runs[-1][-1]
    print(f'seed {seed}: modes {last["modes"]}, HQ {100 * last["hq_fraction"]:.1f}% '
          f'({time.time() - start:.0f} s)', flush=True)
  summary = result['summary']
  print(f'{result["seeds"]} seeds: modes {summary["modes"][0]:.1f} ± '
        f'{summary["modes"][1]:.1f}, HQ {summary["hq"][0]:.1f} ± {summary["hq"][1]:.1f}%; '
        f'wrote {path}')


if __name__ == '__main__':
  main()
