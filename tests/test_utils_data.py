"""lamina.utils.data against torch.utils.data: datasets, samplers, default_collate, DataLoader
arguments, worker processes (in order, deterministic, safe after OpenMP), and the two silently
wrong results of the old loader (labels cast to int64; single-array items split in two)."""
import collections
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lamina
from lamina.utils.data import (BatchSampler, ConcatDataset, DataLoader, RandomSampler,
                               SequentialSampler, Subset, TensorDataset, default_collate,
                               random_split)
from data_items import Failing, Noisy, Pids, Regression, SingleArray, Stream, WorkerEnv, init_marker

torch = pytest.importorskip("torch")
import torch.utils.data as tud  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")


# ---- datasets live in data_items.py: worker processes import them by name -------------------
class TorchStream(tud.IterableDataset):
    """The same stream for PyTorch's DataLoader (the oracle for the worker interleaving)."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = tud.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))



# ---- the two silently wrong results ---------------------------------------------------------
def test_float_labels_keep_their_values_and_dtype():
    # The old loader cast every label to int64: -1.04, -0.77 came back as -1, 0.
    ds = Regression()
    (x, y), = list(DataLoader(ds, batch_size=10))
    assert y.dtype == lamina.float64 and x.dtype == lamina.float32
    np.testing.assert_array_equal(y.numpy(), ds.y)
    tx, ty = next(iter(tud.DataLoader(ds, batch_size=10)))
    assert str(ty.dtype) == "torch.float64"
    np.testing.assert_array_equal(y.numpy(), ty.numpy())


def test_single_array_items_give_single_array_batches():
    # The old loader split each item into (x, y): batches of nonsense.
    batches = list(DataLoader(SingleArray(), batch_size=4))
    assert len(batches) == 2
    first = batches[0]
    assert isinstance(first, lamina.Tensor) and first.shape == (4, 4)
    np.testing.assert_array_equal(first.numpy()[:, 0], [0, 1, 2, 3])
    reference = [b.numpy() for b in tud.DataLoader(SingleArray(), batch_size=4)]
    for ours, theirs in zip(batches, reference):
        np.testing.assert_array_equal(ours.numpy(), theirs)


# ---- default_collate as PyTorch's -----------------------------------------------------------
Point = collections.namedtuple("Point", "x y")

COLLATE_CASES = {
    "floats": [1.5, -0.25],
    "ints": [3, -7],
    "bools": [True, False],
    "np_float32_scalars": [np.float32(1.5), np.float32(2)],
    "np_int_arrays": [np.array([1, 2], np.int64), np.array([3, 4], np.int64)],
    "float64_arrays": [np.ones((2, 2)), np.zeros((2, 2))],
    "tuples": [(np.zeros(2, np.float32), 1, 0.5), (np.ones(2, np.float32), 2, 1.5)],
    "dicts": [{"a": 1.0, "b": [1, 2]}, {"a": 2.0, "b": [3, 4]}],
    "namedtuples": [Point(1, 2.0), Point(3, 4.0)],
    "strings": [("cat", 1), ("dog", 2)],
}


def _as_plain(obj):
    """Collated output of either library as nested Python/NumPy values with dtype names."""
    if isinstance(obj, lamina.Tensor):
        return ("tensor", str(obj.dtype), obj.numpy().tolist())
    if isinstance(obj, torch.Tensor):
        return ("tensor", str(obj.dtype).replace("torch.", ""), obj.numpy().tolist())
    if isinstance(obj, dict):
        return {k: _as_plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return (type(obj).__name__,) + tuple(_as_plain(v) for v in obj)
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [_as_plain(v) for v in obj])
    return obj


@pytest.mark.parametrize("case", sorted(COLLATE_CASES))
def test_default_collate_matches_pytorch(case):
    batch = COLLATE_CASES[case]
    assert _as_plain(default_collate(batch)) == _as_plain(tud.default_collate(batch))


def test_default_collate_tensors_and_errors():
    out = default_collate([lamina.tensor([1.0, 2.0]), lamina.tensor([3.0, 4.0])])
    assert out.shape == (2, 2) and out.dtype == lamina.float32
    with pytest.raises(RuntimeError, match=r"equal size.*\[2\] at entry 0 and \[3\] at entry 1"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])


# ---- datasets -------------------------------------------------------------------------------
def test_tensor_dataset_any_number_of_tensors():
    a, b, c = lamina.randn(5, 2), lamina.arange(5), lamina.ones(5, 3, dtype=lamina.float64)
    ds = TensorDataset(a, b, c)
    assert len(ds) == 5 and len(ds[2]) == 3
    np.testing.assert_array_equal(ds[2][0].numpy(), a.numpy()[2])
    xs, ys, zs = next(iter(DataLoader(ds, batch_size=5)))
    assert (xs.dtype, ys.dtype, zs.dtype) == (lamina.float32, lamina.int64, lamina.float64)
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(lamina.zeros(3), lamina.zeros(4))


def test_subset_concat_and_random_split():
    ds = TensorDataset(lamina.arange(10))
    both = ConcatDataset([Subset(ds, [9, 8]), ds])
    assert len(both) == 12 and both[0][0].item() == 9 and both[3][0].item() == 1
    assert both.cumulative_sizes == [2, 12]
    g = lamina.Generator().manual_seed(3)
    parts = random_split(ds, [0.3, 0.3, 0.4], generator=g)
    assert [len(p) for p in parts] == [3, 3, 4]
    seen = sorted(int(p[i][0].item()) for p in parts for i in range(len(p)))
    assert seen == list(range(10))
    again = random_split(ds, [3, 3, 4], generator=lamina.Generator().manual_seed(3))
    assert [list(p.indices) for p in again] == [list(p.indices) for p in parts]
    # PyTorch's rounding of fractions: the remainder goes round-robin
    assert [len(p) for p in random_split(range(10), [0.33, 0.33, 0.34])] == \
        [len(p) for p in tud.random_split(range(10), [0.33, 0.33, 0.34])]
    with pytest.raises(ValueError, match=r"sum of input lengths \(9\) does not equal"):
        random_split(ds, [4, 5])


# ---- samplers -------------------------------------------------------------------------------
def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = lamina.Generator().manual_seed(0)
    order = list(RandomSampler(range(50), generator=g))
    assert sorted(order) == list(range(50)) and order != list(range(50))
    again = list(RandomSampler(range(50), generator=lamina.Generator().manual_seed(0)))
    assert order == again
    draws = list(RandomSampler(range(3), replacement=True, num_samples=20))
    assert len(draws) == 20 and set(draws) <= {0, 1, 2}
    batches = BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False)
    assert list(batches) == list(tud.BatchSampler(tud.SequentialSampler(range(10)), 3, False))
    assert len(BatchSampler(range(10), 3, True)) == 3
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)


def test_shuffle_follows_manual_seed_and_generator():
    ds = TensorDataset(lamina.arange(40))

    def order(**kw):
        return [int(v) for (b,) in DataLoader(ds, batch_size=8, shuffle=True, **kw) for v in b.tolist()]

    lamina.manual_seed(5)
    a = order()
    lamina.manual_seed(5)
    assert order() == a and sorted(a) == list(range(40))
    g1, g2 = lamina.Generator().manual_seed(1), lamina.Generator().manual_seed(1)
    assert order(generator=g1) == order(generator=g2)


# ---- DataLoader arguments -------------------------------------------------------------------
def test_loader_argument_rules_match_pytorch():
    ds = TensorDataset(lamina.arange(10))
    bs = BatchSampler(SequentialSampler(ds), 3, False)
    loader = DataLoader(ds, batch_sampler=bs)
    assert [b.tolist() for (b,) in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert len(loader) == 4
    sampled = DataLoader(ds, batch_size=4, sampler=[9, 0, 5], drop_last=False)
    assert [b.tolist() for (b,) in sampled] == [[9, 0, 5]]
    unbatched = list(DataLoader(SingleArray(), batch_size=None))
    assert len(unbatched) == 6 and unbatched[1].shape == (4,)
    dl = DataLoader(ds, batch_size=3, pin_memory=True, timeout=0, prefetch_factor=None,
                    persistent_workers=False, collate_fn=lambda items: len(items), drop_last=True)
    assert list(dl) == [3, 3, 3]
    for kwargs, message in [
        (dict(batch_sampler=bs, batch_size=2), "batch_sampler option is mutually exclusive"),
        (dict(sampler=[0, 1], shuffle=True), "sampler option is mutually exclusive with shuffle"),
        (dict(num_workers=-1), "num_workers"),
        (dict(prefetch_factor=2), "prefetch_factor option could only be specified in multiprocessing"),
        (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
        (dict(timeout=-1), "timeout option should be non-negative"),
    ]:
        with pytest.raises(ValueError, match=message):
            DataLoader(ds, **kwargs)
        with pytest.raises(ValueError):
            tud.DataLoader(range(10), **kwargs)
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(4), shuffle=True)


def test_iterable_dataset_single_process():
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]


def test_legacy_seed_orders_depend_on_epoch_only():
    ds = TensorDataset(lamina.arange(30))
    a, b = DataLoader(ds, batch_size=30, shuffle=True, seed=2), DataLoader(ds, batch_size=30, shuffle=True, seed=2)
    first, second = [x.tolist() for (x,) in a], [x.tolist() for (x,) in a]
    assert first != second
    b.epoch = 1
    assert [x.tolist() for (x,) in b] == second


# ---- worker processes -----------------------------------------------------------------------
def test_workers_load_in_parallel_processes_in_order():
    loader = DataLoader(Pids(), batch_size=2, num_workers=2)
    pids = [b.tolist() for b in loader]
    assert len(pids) == 4
    workers = {p for batch in pids for p in batch}
    assert len(workers) == 2 and os.getpid() not in workers     # really other processes
    assert pids[0][0] == pids[2][0] and pids[1][0] == pids[3][0]  # batch i from worker i % 2
    ds = TensorDataset(lamina.arange(23).float(), lamina.arange(23))
    lamina.manual_seed(7)
    with_workers = [y.tolist() for _, y in DataLoader(ds, batch_size=4, shuffle=True, num_workers=2,
                                                      prefetch_factor=3)]
    lamina.manual_seed(7)
    without = [y.tolist() for _, y in DataLoader(ds, batch_size=4, shuffle=True)]
    assert with_workers == without                              # same order, in order


def test_workers_deterministic_under_manual_seed_and_persistent():
    def run():
        lamina.manual_seed(3)
        loader = DataLoader(Noisy(), batch_size=3, num_workers=2, persistent_workers=True)
        return [x.numpy().copy() for epoch in range(2) for x, _ in loader]

    a, b = run(), run()
    assert len(a) == 8
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[4])                      # epoch 2 draws new numbers
    assert not np.array_equal(a[0] - a[0].astype(int), a[1] - a[1].astype(int))  # workers differ


def test_workers_iterable_init_fn_and_errors():
    got = [b.tolist() for b in DataLoader(Stream(10), batch_size=2, num_workers=2)]
    expected = [b.tolist() for b in tud.DataLoader(TorchStream(10), batch_size=2, num_workers=2)]
    assert got == expected                                      # PyTorch's round-robin order
    ids = [b.tolist() for b in DataLoader(WorkerEnv(), batch_size=1, num_workers=2,
                                          worker_init_fn=init_marker)]
    assert ids == [[0], [1], [0], [1]]
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        list(DataLoader(Failing(), batch_size=1, num_workers=2))


def test_fork_after_openmp_cannot_hang(tmp_path):
    # A fork of a process whose libgomp thread pool has run can hang in the child's first
    # parallel region; workers start from a fresh forkserver process instead.
    script = tmp_path / "omp_then_workers.py"
    script.write_text(textwrap.dedent("""
        import lamina
        from lamina.utils.data import Dataset, DataLoader

        class MatmulItems(Dataset):
            def __len__(self):
                return 4
            def __getitem__(self, i):
                a = lamina.ones(192, 192)
                return (a @ a).sum()            # an OpenMP kernel inside the worker

        if __name__ == "__main__":
            lamina.set_num_threads(2)
            a = lamina.randn(256, 256)
            (a @ a).sum()                        # the main process's thread pool has run
            out = [float(b.sum()) for b in DataLoader(MatmulItems(), batch_size=2, num_workers=2)]
            print(out)
    """))
    # the lamina under test (installed in CI; a clean checkout's python/ has no built _C)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(lamina.__file__))))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str([2 * 192.0 ** 3] * 2)
