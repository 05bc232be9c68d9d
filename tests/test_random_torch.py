"""lamina's random numbers are PyTorch's: after the same manual_seed, every draw (factories,
in-place fills, nn initializers, samplers, DataLoader shuffles, random_split) gives the values
PyTorch 2.x gives on an x86 CPU, bit for bit, and leaves the generator where PyTorch's is (the
draw after it agrees too). PyTorch is the oracle here, never used by lamina."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lamina
from lamina import random as lrandom
from lamina.utils.data import DataLoader, RandomSampler, SubsetRandomSampler, TensorDataset, random_split

from conftest import requires_torch

SEEDS = [0, 1, 42, 2 ** 32 + 5, -3, 67280421310721]


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def both(seed):
    torch = requires_torch()
    torch.manual_seed(seed)
    lamina.manual_seed(seed)
    return torch


# (name, draw) over a framework module `m`: each draw is made in both frameworks, in sequence.
DRAWS = [
    ("randn 3", lambda m: m.randn(3)),                           # < 16: float64 Box-Muller, cached sine
    ("randn scalar", lambda m: m.randn(())),                     # ... uses the cached half
    ("randn 16", lambda m: m.randn(4, 4)),                       # one AVX2 block
    ("randn 37", lambda m: m.randn(37)),                         # ragged tail: 16 redrawn
    ("randn 64x10", lambda m: m.randn(64, 10)),
    ("randn 2x3x5x7", lambda m: m.randn(2, 3, 5, 7)),
    ("randn f64 5", lambda m: m.randn(5, dtype=m.float64)),
    ("randn f64 40", lambda m: m.randn(40, dtype=m.float64)),
    ("rand 5", lambda m: m.rand(5)),
    ("rand f64 7", lambda m: m.rand(7, dtype=m.float64)),
    ("randint 0..10", lambda m: m.randint(0, 10, (9,))),
    ("randint -5..7", lambda m: m.randint(-5, 7, (4, 3))),
    ("randint 2^40", lambda m: m.randint(0, 2 ** 40, (6,))),
    ("randint high only", lambda m: m.randint(6, (5,))),
    ("randperm 1", lambda m: m.randperm(1)),
    ("randperm 100", lambda m: m.randperm(100)),
    ("uniform_", lambda m: m.empty(10, 10).uniform_(-2.0, 3.0)),
    ("uniform_ f64", lambda m: m.empty(33, dtype=m.float64).uniform_(-0.3, 0.7)),
    ("normal_", lambda m: m.empty(50).normal_(0.5, 2.0)),
    ("normal_ small", lambda m: m.empty(3).normal_(-1.0, 0.25)),
    ("normal_ f64", lambda m: m.empty(100, dtype=m.float64).normal_(0.5, 2.0)),
    ("normal(float, float, size)", lambda m: m.normal(2.0, 3.0, size=(20,))),
    ("normal small", lambda m: m.normal(2.0, 3.0, size=(3,))),
    ("normal(tensor, tensor)", lambda m: m.normal(m.full((20,), 2.0), m.full((20,), 3.0))),
    ("normal(tensor, float)", lambda m: m.normal(m.arange(18.0), 0.5)),
    ("normal(float, tensor)", lambda m: m.normal(1.5, m.arange(1, 19.0))),
    ("bernoulli(probs)", lambda m: m.bernoulli(m.linspace(0, 1, 30))),
    ("bernoulli(probs f64)", lambda m: m.bernoulli(m.linspace(0, 1, 30, dtype=m.float64))),
    ("bernoulli(x, p)", lambda m: m.bernoulli(m.zeros(7), 0.4)),
    ("Tensor.bernoulli()", lambda m: m.full((9,), 0.7).bernoulli()),
    ("bernoulli_(float)", lambda m: m.empty(33).bernoulli_(0.3)),
    ("bernoulli_(tensor)", lambda m: m.empty(4, 5).bernoulli_(m.full((5,), 0.3))),
    ("random_(from, to)", lambda m: m.empty(6, dtype=m.int64).random_(0, 10)),
    ("random_(to) float", lambda m: m.empty(6).random_(7)),
    ("random_() int64", lambda m: m.empty(6, dtype=m.int64).random_()),
    ("random_() float32", lambda m: m.empty(6).random_()),
    ("random_() float64", lambda m: m.empty(6, dtype=m.float64).random_()),
    ("random_() uint8", lambda m: m.empty(6, dtype=m.uint8).random_()),
    ("random_() int32", lambda m: m.empty(6, dtype=m.int32).random_()),
    ("exponential_", lambda m: m.empty(40).exponential_(1.5)),
    ("exponential_ f64", lambda m: m.empty(40, dtype=m.float64).exponential_()),
    ("multinomial 1", lambda m: m.multinomial(m.tensor([0.2, 0.3, 0.5]), 1)),
    ("multinomial no replacement", lambda m: m.multinomial(m.tensor([[0.2, 0.3, 0.5, 0.0, 1.0], [1.0, 1, 1, 1, 1]]), 3)),
    ("multinomial replacement", lambda m: m.multinomial(m.tensor([[0.2, 0.3, 0.5, 0.0, 1.0], [1.0, 2, 3, 4, 5]]), 9, True)),
    ("multinomial replacement 1000", lambda m: m.multinomial(m.rand(1000), 50, replacement=True)),
    ("multinomial f64", lambda m: m.multinomial(m.rand(2, 100, dtype=m.float64), 20)),
    ("randn after", lambda m: m.randn(5)),
]


@pytest.mark.parametrize("seed", SEEDS)
def test_factory_and_fill_draws_are_pytorchs_in_sequence(seed):
    torch = both(seed)
    for name, draw in DRAWS:
        t, lam = draw(torch), draw(lamina)
        assert same(lam.numpy(), t.numpy()), f"seed {seed}: {name}: lamina {lam.numpy()} vs torch {t.numpy()}"


@pytest.mark.parametrize("n", [16, 17, 31, 1000, 4096 + 5])
def test_randn_float32_blocks_match_bit_for_bit_over_many_values(n):
    # The AVX2 log/sincos path: every one of these values must have PyTorch's bits.
    torch = both(123)
    for _ in range(3):
        assert same(lamina.randn(n).numpy(), torch.randn(n).numpy())


@pytest.mark.parametrize("seed", [0, 7])
def test_nn_initializers_are_pytorchs(seed):
    torch = both(seed)
    pairs = [(torch.nn.Linear(784, 300), lamina.nn.Linear(784, 300)),
             (torch.nn.Conv2d(6, 16, 5), lamina.nn.Conv2d(6, 16, 5)),
             (torch.nn.Linear(3, 1, bias=False), lamina.nn.Linear(3, 1, bias=False)),
             (torch.nn.Conv2d(1, 6, 5, padding=2), lamina.nn.Conv2d(1, 6, 5, padding=2))]
    for tm, lm in pairs:
        for (tn, tp), (ln, lp) in zip(tm.named_parameters(), lm.named_parameters()):
            assert tn == ln and same(lp.detach().numpy(), tp.detach().numpy()), (type(tm).__name__, tn)
    for fn in ("xavier_uniform_", "xavier_normal_", "kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_"):
        tw, lw = torch.empty(20, 30), lamina.empty(20, 30)
        getattr(torch.nn.init, fn)(tw)
        getattr(lamina.nn.init, fn)(lw)
        assert same(lw.detach().numpy(), tw.numpy()), fn
    assert same(lamina.randn(4).numpy(), torch.randn(4).numpy())


def test_generators_of_their_own_are_pytorchs_seeded_or_not():
    torch = requires_torch()
    tg, lg = torch.Generator(), lamina.Generator()     # unseeded: PyTorch's fixed seed
    assert lg.initial_seed() == tg.initial_seed()
    assert same(lamina.rand(4, generator=lg).numpy(), torch.rand(4, generator=tg).numpy())
    tg.manual_seed(99), lg.manual_seed(99)
    assert same(lamina.randn(20, generator=lg).numpy(), torch.randn(20, generator=tg).numpy())
    assert same(lamina.randperm(30, generator=lg).numpy(), torch.randperm(30, generator=tg).numpy())
    w_t, w_l = torch.empty(5, 6), lamina.empty(5, 6)
    torch.nn.init.kaiming_uniform_(w_t, generator=tg)
    lamina.nn.init.kaiming_uniform_(w_l, generator=lg)
    assert same(w_l.detach().numpy(), w_t.numpy())


@pytest.mark.parametrize("seed", [0, 5])
def test_dataloader_shuffles_samplers_and_random_split_are_pytorchs(seed):
    torch = both(seed)
    from torch.utils import data as td
    x = np.arange(103, dtype=np.float32)
    tl = td.DataLoader(td.TensorDataset(torch.from_numpy(x)), batch_size=10, shuffle=True)
    ll = DataLoader(TensorDataset(lamina.from_numpy(x)), batch_size=10, shuffle=True)
    for epoch in range(2):
        assert [b[0].tolist() for b in ll] == [b[0].tolist() for b in tl], epoch
    assert same(lamina.randn(5).numpy(), torch.randn(5).numpy())  # the loader drew what PyTorch's did
    assert [int(i) for i in random_split(list(range(10)), [3, 7])[0].indices] == \
        list(td.random_split(range(10), [3, 7])[0])
    assert list(RandomSampler(range(20), replacement=True, num_samples=70)) == \
        list(td.RandomSampler(range(20), replacement=True, num_samples=70))
    assert list(RandomSampler(range(20), num_samples=45)) == list(td.RandomSampler(range(20), num_samples=45))
    assert [int(i) for i in SubsetRandomSampler(list(range(9)))] == [int(i) for i in td.SubsetRandomSampler(list(range(9)))]
    assert list(SubsetRandomSampler([5, 6, 7], generator=lamina.Generator().manual_seed(3))) == \
        list(td.SubsetRandomSampler([5, 6, 7], generator=torch.Generator().manual_seed(3)))
    assert same(lamina.rand(3).numpy(), torch.rand(3).numpy())


def test_dataloader_with_workers_shuffles_as_pytorchs(tmp_path):
    requires_torch()
    script = tmp_path / "workers.py"
    script.write_text(textwrap.dedent("""
        import json, sys
        import numpy as np
        def main(fw):
            x = np.arange(57, dtype=np.float32)
            if fw == "torch":
                import torch as m
                from torch.utils.data import DataLoader, TensorDataset
            else:
                import lamina as m
                from lamina.utils.data import DataLoader, TensorDataset
            m.manual_seed(11)
            dl = DataLoader(TensorDataset(m.from_numpy(x)), batch_size=8, shuffle=True, num_workers=2)
            out = [[float(v) for v in b[0].tolist()] for epoch in range(2) for b in dl]
            print(json.dumps({"batches": out, "after": m.randn(3).tolist()}))
        if __name__ == "__main__":
            main(sys.argv[1])
    """))
    # the lamina under test: the installed package in CI (a clean checkout's python/ has no built _C)
    lamina_parent = os.path.dirname(os.path.dirname(os.path.abspath(lamina.__file__)))
    env = dict(os.environ, PYTHONPATH=lamina_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
    got = {}
    for fw in ("torch", "lamina"):
        p = subprocess.run([sys.executable, str(script), fw], capture_output=True, text=True, timeout=300, env=env)
        assert p.returncode == 0, p.stderr[-3000:]
        got[fw] = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["lamina"] == got["torch"]


def test_state_round_trips_through_json_and_carries_the_cached_normal():
    g = lamina.Generator().manual_seed(5)
    lamina.randn(3, generator=g)  # odd count: leaves a cached sine half behind
    state = json.loads(json.dumps(g.get_state()))
    a = [lamina.randn(1, generator=g).numpy(), lamina.rand(4, generator=g).numpy()]
    g2 = lamina.Generator().set_state(state)
    b = [lamina.randn(1, generator=g2).numpy(), lamina.rand(4, generator=g2).numpy()]
    assert all(same(x, y) for x, y in zip(a, b))
    lamina.manual_seed(8)
    s = lamina.get_rng_state()
    first = lamina.randn(20).numpy()
    lamina.set_rng_state(s)
    assert same(lamina.randn(20).numpy(), first)


def test_bad_seeds_and_states_say_what_was_expected():
    with pytest.raises(ValueError, match=r"seed: expected an integer in \[-2\*\*63, 2\*\*64\), got 18446744073709551616"):
        lamina.manual_seed(2 ** 64)
    with pytest.raises(ValueError, match="seed"):
        lamina.Generator().manual_seed(-(2 ** 63) - 1)
    with pytest.raises(TypeError, match="seed: expected an integer"):
        lamina.manual_seed("abc")
    with pytest.raises(ValueError, match="lamina.MT19937 state"):
        lamina.Generator().set_state({"bit_generator": "PCG64", "state": {}})
    bad = lamina.Generator().get_state()
    bad["key"] = bad["key"][:10]
    with pytest.raises(ValueError, match="624 key words"):
        lamina.Generator().set_state(bad)
    with pytest.raises(TypeError, match="generator: expected a lamina.Generator"):
        lamina.rand(2, generator=np.random.default_rng(0))


def test_random_functions_reject_bad_arguments_by_name():
    with pytest.raises(ValueError, match="normal: std must be >= 0.0, got -1.0"):
        lamina.normal(0.0, -1.0, size=(2,))
    with pytest.raises(TypeError, match="normal: with float mean and std, expected a size"):
        lamina.normal(0.0, 1.0)
    with pytest.raises(ValueError, match="bernoulli: expected all probabilities in \\[0, 1\\]"):
        lamina.bernoulli(lamina.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="bernoulli_: p must be in \\[0, 1\\], got 2"):
        lamina.zeros(2).bernoulli_(2)
    with pytest.raises(ValueError, match="cannot sample n_sample > prob_dist.size\\(-1\\) samples without replacement"):
        lamina.multinomial(lamina.tensor([0.5, 0.5]), 3)
    with pytest.raises(ValueError, match="probability tensor contains either inf, nan or element < 0"):
        lamina.multinomial(lamina.tensor([0.5, -0.1]), 1)
    with pytest.raises(ValueError, match="sum of probabilities <= 0"):
        lamina.multinomial(lamina.tensor([0.0, 0.0]), 1)
    with pytest.raises(ValueError, match="prob_dist must be 1 or 2 dim"):
        lamina.multinomial(lamina.ones(2, 2, 2), 1)
    with pytest.raises(ValueError, match="random_: expected from < to, got from=5, to=5"):
        lamina.zeros(2, dtype=lamina.int64).random_(5, 5)
    with pytest.raises(TypeError, match="exponential_: expected a floating-point tensor"):
        lamina.zeros(2, dtype=lamina.int64).exponential_()


def test_negative_seed_counts_modulo_2_64_as_pytorchs():
    torch = both(-1)
    assert lamina.initial_seed() == torch.initial_seed() == 2 ** 64 - 1
    assert same(lamina.randn(18).numpy(), torch.randn(18).numpy())


def _round_f32(r):
    """The float32 nearest the exact rational r (ties to even)."""
    from fractions import Fraction
    f = np.float32(float(r))
    cands = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - r), int(np.float32(c).view(np.int32)) & 1))


def test_fused_scale_shift_rounds_once():
    from fractions import Fraction
    from lamina import _C
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 1000)) * np.array([[1.0], [1e8], [1e-8]])
    y = np.empty_like(a)
    for i in range(len(a)):  # scalar scale and shift per call, as the kernel takes them
        _C.fused_scale_shift(a[i:i + 1], y[i:i + 1], b[i], c[i])
    exact = [float(Fraction(x) * Fraction(s) + Fraction(t)) for x, s, t in zip(a, b, c)]  # rounds once
    assert same(y, np.array(exact))
    a32, b32, c32 = (v.astype(np.float32) for v in (rng.standard_normal(300), rng.standard_normal(300) * 3,
                                                      rng.standard_normal(300) * 1e-7))
    y32 = np.empty_like(a32)
    for i in range(len(a32)):
        _C.fused_scale_shift(a32[i:i + 1], y32[i:i + 1], float(b32[i]), float(c32[i]))
    want = [_round_f32(Fraction(float(x)) * Fraction(float(s)) + Fraction(float(t))) for x, s, t in zip(a32, b32, c32)]
    assert same(y32, np.array(want, dtype=np.float32))


def test_normal_blocks_checks_its_buffer():
    from lamina import _C
    with pytest.raises(ValueError, match="data: expected a multiple of 16 values, got 15"):
        _C.normal_blocks(np.zeros(15, np.float32), 0.0, 1.0)
    with pytest.raises(TypeError, match="data: expected dtype float32 or float64, got int64"):
        _C.normal_blocks(np.zeros(16, np.int64), 0.0, 1.0)
    with pytest.raises(ValueError, match="data: expected a writeable array"):
        a = np.zeros(16, np.float32)
        a.flags.writeable = False
        _C.normal_blocks(a, 0.0, 1.0)


@pytest.mark.parametrize("p", [0.3, 0.5, 0.9])
def test_dropout_masks_values_and_gradients_are_pytorchs(p):
    """Masks are PyTorch's CPU bernoulli_(1 - p) draws: a float64 uniform per unit, kept below
    1 - p (checked against torch.rand(float64) from the same seed), and PyTorch's dropout itself
    gives the same outputs and gradients."""
    torch = both(3)
    x = np.random.default_rng(0).standard_normal((8, 6, 3, 3)).astype(np.float32)
    x[0, 0, 0, 0] = -0.0
    keep2d = torch.rand(48, dtype=torch.float64).numpy() < 1 - p
    keep = torch.rand(x.size, dtype=torch.float64).numpy() < 1 - p
    scale = np.float32(1) / np.float32(1 - p)
    noise2d = np.where(keep2d, scale, np.float32(0)).astype(np.float32).reshape(8, 6, 1, 1)
    noise = np.where(keep, scale, np.float32(0)).astype(np.float32).reshape(x.shape)
    want = (x * noise2d) * noise
    lamina.manual_seed(3)  # lamina draws what torch.rand drew above
    lx = lamina.tensor(x, requires_grad=True)
    ly = lamina.nn.functional.dropout(lamina.nn.functional.dropout2d(lx, p), p)
    assert same(ly.detach().numpy(), want)  # incl. -0 where a negative value is dropped
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    ly.backward(lamina.tensor(g))
    assert same(lx.grad.numpy(), (g * noise) * noise2d)
    assert same(lamina.randn(3).numpy(), torch.randn(3).numpy())  # the draw after agrees
    # PyTorch's dropout itself, gradients too
    torch.manual_seed(4), lamina.manual_seed(4)
    tx, lx = torch.tensor(x, requires_grad=True), lamina.tensor(x, requires_grad=True)
    ty = torch.nn.functional.dropout(torch.nn.functional.dropout2d(tx, p), p)
    ly = lamina.nn.functional.dropout(lamina.nn.functional.dropout2d(lx, p), p)
    assert same(ly.detach().numpy(), ty.detach().numpy())
    ty.backward(torch.tensor(g))
    ly.backward(lamina.tensor(g))
    assert same(lx.grad.numpy(), tx.grad.numpy())
    assert same(lamina.nn.Dropout(p)(lamina.ones(40)).numpy(), torch.nn.Dropout(p)(torch.ones(40)).numpy())
    both(5)
    assert same(lamina.nn.functional.dropout(lamina.ones(5), 1.0).numpy(), torch.nn.functional.dropout(torch.ones(5), 1.0).numpy())
    assert same(lamina.randn(3).numpy(), torch.randn(3).numpy())  # p = 1 drew nothing, as PyTorch's


def test_dropout_kernel_checks_its_mask():
    from lamina import _C
    x, y = np.ones(6, np.float32), np.empty(6, np.float32)
    with pytest.raises(ValueError, match=r"keep: expected 3 units \(6 elements / unit 2\), got 4"):
        _C.dropout(x, y, np.ones(4, np.uint8), 0.5, 2)
    with pytest.raises(TypeError, match="keep: expected a bool or uint8 array, got dtype float64"):
        _C.dropout(x, y, np.ones(3), 0.5, 2)
    with pytest.raises(ValueError, match="keep: expected a C-contiguous array"):
        _C.dropout(x, y, np.ones(6, np.uint8)[::2], 0.5, 2)
    _C.dropout(x, y, np.array([True, False, True]), 0.5, 2)
    assert y.tolist() == [2, 2, 0, 0, 2, 2]


def test_draws_from_two_threads_are_whole_draws_of_the_sequence():
    """Each call is one whole draw: from two threads, every result is one of the results the
    same calls give one after another (a ragged normal redraws its tail: interleaving another
    thread's draw inside it would give values from neither)."""
    import threading
    def calls(g, k):
        return [lamina.randn(37, generator=g).numpy().tobytes() for _ in range(k)]
    sequential = set(calls(lamina.Generator().manual_seed(3), 400))
    g = lamina.Generator().manual_seed(3)
    got = []
    threads = [threading.Thread(target=lambda: got.extend(calls(g, 200))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 400 and set(got) == sequential


def test_a_generator_pickles_and_copies_with_its_state():
    import copy
    import pickle
    g = lamina.Generator().manual_seed(3)
    lamina.randn(5, generator=g)  # a cached Box-Muller half travels too
    for clone in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g)):
        assert clone.initial_seed() == 3
        assert same(lamina.randn(7, generator=clone).numpy(), lamina.randn(7, generator=copy.deepcopy(g)).numpy())
    a = pickle.loads(pickle.dumps(g))
    assert same(lamina.rand(4, generator=a).numpy(), lamina.rand(4, generator=g).numpy())


def test_an_empty_source_gives_an_empty_pass_and_draws_nothing():
    lamina.manual_seed(4)
    assert list(RandomSampler([])) == [] and list(RandomSampler([], replacement=True)) == []
    after = lamina.rand(3).numpy()
    lamina.manual_seed(4)
    assert same(lamina.rand(3).numpy(), after)


@pytest.mark.parametrize("weights,num_samples,replacement", [
    ([0.1, 0.9, 0.5], 4, True), ([1, 2, 3, 4, 5], 50, True), ([0.2, 0.3, 0.5, 0.1], 3, False),
    (list(np.linspace(0.1, 1, 40)), 100, True)])
def test_weighted_random_sampler_draws_pytorchs_indices(weights, num_samples, replacement):
    torch = requires_torch()
    from lamina.utils.data import WeightedRandomSampler
    torch.manual_seed(3)
    lamina.manual_seed(3)
    want = list(torch.utils.data.WeightedRandomSampler(weights, num_samples, replacement))
    assert list(WeightedRandomSampler(weights, num_samples, replacement)) == want
    g, tg = lamina.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    sampler = WeightedRandomSampler(lamina.tensor(weights), num_samples, replacement, generator=g)
    assert list(sampler) == list(torch.utils.data.WeightedRandomSampler(weights, num_samples, replacement,
                                                                        generator=tg))
    assert len(sampler) == num_samples
    loader = DataLoader(TensorDataset(lamina.arange(len(weights))), batch_size=7, sampler=sampler)
    assert sum(len(b[0]) for b in loader) == num_samples
    with pytest.raises(ValueError, match="num_samples"):
        WeightedRandomSampler(weights, 0)
