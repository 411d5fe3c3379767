"""The PyTorch port of recipe B (`experiments/recipe_b_torch.py`), an independent check of
ganjax's recipe-B rows: seeded, resumable, and step for step the algorithm ganjax runs.
PyTorch is not a dependency of ganjax (CI installs none): these tests skip without it."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import unrolled_ring
from conftest import d_update, g_objective_value, in_data_axis, member_parts
from ganjax import step

torch = pytest.importorskip('torch')

from experiments import recipe_b_torch  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(autouse=True)
def on_the_cpu():
  """ganjax's side on the CPU, where the port runs: these tests compare algorithms, so they
  mean the same on a GPU machine (measured on the CPU only)."""
  with jax.default_device(jax.devices('cpu')[0]):
    yield


def twin(params, widths):
  """The port's network holding a ganjax MLP's weights (Dense_i: kernel, bias)."""
  net = recipe_b_torch.mlp(widths)
  for i, layer in enumerate(l for l in net if isinstance(l, torch.nn.Linear)):
    layer.weight.data = torch.tensor(np.asarray(params[f'Dense_{i}']['kernel']).T.copy())
    layer.bias.data = torch.tensor(np.asarray(params[f'Dense_{i}']['bias']).copy())
  return net


def assert_same_weights(ours, net, rtol, atol):
  layers = [l for l in net if isinstance(l, torch.nn.Linear)]
  for i, layer in enumerate(layers):
    np.testing.assert_allclose(ours[f'Dense_{i}']['kernel'], layer.weight.detach().numpy().T,
                               rtol=rtol, atol=atol, err_msg=f'Dense_{i} kernel')
    np.testing.assert_allclose(ours[f'Dense_{i}']['bias'], layer.bias.detach().numpy(),
                               rtol=rtol, atol=atol, err_msg=f'Dense_{i} bias')


def test_the_pytorch_recipe_b_check_is_seeded_and_its_update_order_matters(tmp_path):
  runs = {}
  for name, order in (('a', 'simultaneous'), ('b', 'simultaneous'), ('c', 'alternating')):
    recipe_b_torch.main(['--quick', '--order', order, f'--out={tmp_path / name}'])
    runs[name] = json.loads(
        (tmp_path / name / f'recipe_b_torch_ring_{order}.json').read_text())
  a = runs['a']
  assert (a['seeds'], a['steps'], a['order']) == (2, 40, 'simultaneous')
  assert [p['step'] for p in a['per_seed'][0]] == [10, 20, 30, 40]
  assert all(0 <= p['modes'] <= 8 and 0 <= p['hq_fraction'] <= 1
             for run in a['per_seed'] for p in run)
  assert a['per_seed'] == runs['b']['per_seed']  # seeded: a rerun is the same run
  assert a['per_seed'] != runs['c']['per_seed']  # G after D's update is another algorithm
  recipe_b_torch.main(['--quick', '--unroll', '2', f'--out={tmp_path / "u"}'])
  unrolled = json.loads((tmp_path / 'u' / 'recipe_b_torch_ring_simultaneous_unroll2.json')
                        .read_text())
  assert unrolled['unroll'] == 2 and 'Unrolled GAN row' in unrolled['recipe']
  assert unrolled['per_seed'] != a['per_seed']  # G's loss reads the look-ahead D
  # A rerun keeps the seeds its file holds and adds the rest: a cut-off after seed 0.
  path = tmp_path / 'b' / 'recipe_b_torch_ring_simultaneous.json'
  kept = [dict(p, modes=p['modes'] - 1) for p in a['per_seed'][0]]  # marked: not rerun
  path.write_text(json.dumps({**a, 'seeds': 1, 'per_seed': [kept]}))
  recipe_b_torch.main(['--quick', f'--out={tmp_path / "b"}'])
  resumed = json.loads(path.read_text())
  assert resumed['per_seed'] == [kept, a['per_seed'][1]] and resumed['seeds'] == 2
  assert resumed['summary']['modes'][0] == pytest.approx(a['summary']['modes'][0] - 0.5)
  path.write_text(json.dumps({**a, 'steps': 25_000}))  # other settings: refused, kept
  with pytest.raises(SystemExit):
    recipe_b_torch.main(['--quick', f'--out={tmp_path / "b"}'])
  assert json.loads(path.read_text())['steps'] == 25_000


def test_the_pytorch_look_ahead_is_the_adam_step_d_takes():
  """The unrolled check's written-out Adam update equals torch.optim.Adam's step, from a
  fresh optimiser and from one with moments, so the look-ahead D is the D of the next steps."""
  torch.manual_seed(0)
  disc = recipe_b_torch.mlp([2, 8, 8, 1])
  d_opt = torch.optim.Adam(disc.parameters(), lr=1e-2, betas=(0.5, 0.999), eps=1e-8)
  x, fake = torch.randn(16, 2), torch.randn(16, 2)
  for _ in range(2):  # the first pass starts from empty Adam state, the second from moments
    ahead = recipe_b_torch.look_ahead(disc, d_opt, x, fake, 2)
    for _ in range(2):
      d_opt.zero_grad()
      recipe_b_torch.d_loss_at(disc, dict(disc.named_parameters()), x, fake).backward()
      d_opt.step()
    for name, p in disc.named_parameters():
      torch.testing.assert_close(ahead[name], p, rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures('highest_matmul_precision')  # a claim about arithmetic
def test_the_pytorch_port_and_ganjax_take_the_same_unrolled_generator_gradient():
  """From the same weights, Adam state and batch, recipe B's unrolled G gradient (5 look-ahead
  Adam updates of D) is the same in ganjax's step and in the PyTorch port: the two check each
  other's algorithm, so where their results differ, the seeds differ. D first takes 3 real
  updates on both sides, so the look-ahead starts from Adam moments and a step count (from a
  fresh state Adam's first step is sign-like and would hide how they are carried)."""
  cfg = unrolled_ring.get_config()
  cfg.unroll_steps, cfg.batch_size = 5, 64
  parts, m, _ = member_parts(cfg)
  rng = np.random.default_rng(0)
  z = rng.normal(size=(64, 256)).astype(np.float32)
  x = (0.7 * rng.normal(size=(64, 2))).astype(np.float32)

  gen, disc = twin(m['g_params'], [256, 128, 128, 2]), twin(m['d_params'], [2, 128, 128, 1])
  d_opt = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.999), eps=1e-8)
  for _ in range(3):
    xd, fd = (rng.normal(size=(64, 2)).astype(np.float32) for _ in range(2))
    m = dict(m, **dict(zip(('d_params', 'd_opt', 'd_stats'), d_update(parts, m, xd, fd))))
    d_opt.zero_grad()
    recipe_b_torch.d_loss_at(disc, dict(disc.named_parameters()), torch.tensor(xd),
                             torch.tensor(fd)).backward()
    d_opt.step()
  assert_same_weights(m['d_params'], disc, rtol=1e-4, atol=1e-7)
  grads = jax.grad(lambda g: g_objective_value(parts, m, g, z, x))(m['g_params'])
  fake, real = gen(torch.tensor(z)), torch.tensor(x)
  ahead = recipe_b_torch.look_ahead(disc, d_opt, real, fake, 5)
  theirs = torch.autograd.grad(-recipe_b_torch.d_loss_at(disc, ahead, real, fake),
                               list(gen.parameters()))
  for i in range(3):
    ours = grads[f'Dense_{i}']
    np.testing.assert_allclose(ours['kernel'], theirs[2 * i].numpy().T, rtol=1e-3, atol=2e-6)
    np.testing.assert_allclose(ours['bias'], theirs[2 * i + 1].numpy(), rtol=1e-3, atol=2e-6)
  assert max(float(np.abs(g).max()) for g in jax.tree_util.tree_leaves(grads)) > 1e-3


def test_the_pytorch_port_and_ganjax_start_from_the_same_initial_distribution():
  """Recipe B's init on both sides: every weight matrix is orthogonal times gain 1.4 (all its
  singular values 1.4), every bias zero; so runs of the two differ by seeds, not by init."""
  _, m, _ = member_parts(unrolled_ring.get_config())
  torch.manual_seed(0)
  for widths, ours in (([256, 128, 128, 2], m['g_params']), ([2, 128, 128, 1], m['d_params'])):
    theirs = [layer for layer in recipe_b_torch.mlp(widths) if isinstance(layer, torch.nn.Linear)]
    assert len(theirs) == len(ours) == 3
    for i, layer in enumerate(theirs):
      kernel = np.asarray(ours[f'Dense_{i}']['kernel'])
      assert kernel.shape == tuple(layer.weight.shape[::-1])
      for w in (kernel, layer.weight.detach().numpy()):
        np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), 1.4, rtol=1e-5)
      assert not np.any(ours[f'Dense_{i}']['bias']) and not layer.bias.detach().any()


@pytest.mark.usefixtures('highest_matmul_precision')  # a claim about arithmetic
@pytest.mark.parametrize('unroll', [0, 5])
def test_the_port_follows_ganjax_training_step_by_step(unroll):
  """Started from ganjax's initial weights and fed the real batches and noise ganjax's
  compiled step draws, the port's training loop (`recipe_b_torch.train_step`) stays with
  ganjax's for 40 iterations of recipe B, both Adam states carried: D and G, their update
  order, the look-ahead's moments and step counts. One gradient agreeing (the test above)
  would miss a difference in how training strings steps together; this would not."""
  cfg = unrolled_ring.get_config()
  cfg.unroll_steps, cfg.batch_size, n = unroll, 64, 64
  parts, m, _ = member_parts(cfg)
  state = {'step': jnp.zeros((), jnp.int32), 'members': jax.tree_util.tree_map(
      lambda a: a[None], m)}
  weight = jnp.zeros((1,), jnp.float32)
  ganjax_step = jax.jit(lambda s, b: in_data_axis(lambda: parts(s, b, weight)[0]))

  @jax.jit
  def noise(s):  # the z ganjax's step draws for D's batch at step s (member 0, one device)
    kz, _ = jax.random.split(step.draw_key(m['key'], s, 0))
    return in_data_axis(lambda: parts.noise(kz, n))

  gen, disc = twin(m['g_params'], [256, 128, 128, 2]), twin(m['d_params'], [2, 128, 128, 1])
  g_opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-8)
  d_opt = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.999), eps=1e-8)
  ring = np.asarray(((1, 0), (0, 1), (-1, 0), (0, -1)), np.float32)
  rng = np.random.default_rng(0)
  for s in range(40):
    x = ring[rng.integers(4, size=n)] + 0.01 * rng.normal(size=(n, 2)).astype(np.float32)
    z = np.asarray(noise(s))
    state = ganjax_step(state, x[None])
    recipe_b_torch.train_step(gen, disc, g_opt, d_opt, torch.tensor(x), torch.tensor(z),
                              'simultaneous', unroll)
  ours = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), state['members'])
  assert int(state['step']) == 40
  moved = np.abs(ours['g_params']['Dense_2']['kernel'] - m['g_params']['Dense_2']['kernel'])
  assert moved.max() > 1e-2  # 40 steps of G's lr 1e-3 moved it: the comparison has teeth
  assert_same_weights(ours['g_params'], gen, rtol=1e-3, atol=1e-5)
  assert_same_weights(ours['d_params'], disc, rtol=1e-3, atol=1e-5)
