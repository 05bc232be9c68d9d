"""DataLoader: exact coverage per epoch, drop_last, seeded shuffles, the whole-array fast path."""
import numpy as np
import pytest

import lamina
from lamina.data import ArrayDataset, DataLoader, Subset, TensorDataset


class ItemOnly:
    """A dataset with only __len__/__getitem__ (no arrays()): the item-by-item path."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2, 3), i, dtype=np.float64), i


def labels_of(loader):
    return [y.numpy().tolist() for _, y in loader]


@pytest.mark.parametrize("n,batch,drop_last", [(10, 3, False), (10, 3, True), (12, 4, False),
                                               (12, 4, True), (5, 8, False), (1, 1, False)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_dataset_once(n, batch, drop_last, shuffle):
    x = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    loader = DataLoader(ArrayDataset(x, np.arange(n)), batch_size=batch, shuffle=shuffle,
                        seed=7, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader)
    sizes = [int(y.shape[0]) for _, y in batches]
    assert all(s == batch for s in sizes[:-1])
    seen = np.concatenate([y.numpy() for _, y in batches]) if batches else np.zeros(0, np.int64)
    if drop_last:
        assert len(loader) == n // batch and all(s == batch for s in sizes)
        assert len(set(seen.tolist())) == len(seen) == (n // batch) * batch
    else:
        assert len(loader) == -(-n // batch)
        assert sorted(seen.tolist()) == list(range(n))
    for xb, yb in batches:       # rows stay paired with their labels
        assert xb.dtype == lamina.float32 and yb.dtype == lamina.int64
        np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy().astype(np.float32))


def test_drop_last_with_too_few_samples():
    loader = DataLoader(ArrayDataset(np.zeros((3, 1), np.float32), np.arange(3)), batch_size=4, drop_last=True)
    assert len(loader) == 0 and list(loader) == []


def test_seeded_shuffle_reproducible_and_differs_per_epoch():
    ds = ArrayDataset(np.zeros((50, 1), np.float32), np.arange(50))
    a = DataLoader(ds, batch_size=50, shuffle=True, seed=3)
    b = DataLoader(ds, batch_size=50, shuffle=True, seed=3)
    c = DataLoader(ds, batch_size=50, shuffle=True, seed=4)
    a1, a2 = labels_of(a), labels_of(a)
    assert a1 == labels_of(b) and a2 == labels_of(b)          # same seed, same epoch: same order
    assert a1 != a2                                          # a new order each epoch
    assert a1 != labels_of(c)
    assert a1[0] != list(range(50))
    b.epoch = 1                                              # resuming at epoch 1
    assert labels_of(b) == a2


def test_no_shuffle_is_in_order():
    loader = DataLoader(ArrayDataset(np.zeros((5, 1), np.float32), np.arange(5)), batch_size=2)
    assert labels_of(loader) == [[0, 1], [2, 3], [4]]


def test_unseeded_loader_follows_manual_seed():
    ds = ArrayDataset(np.zeros((30, 1), np.float32), np.arange(30))
    lamina.manual_seed(11)
    a = labels_of(DataLoader(ds, batch_size=30, shuffle=True))
    lamina.manual_seed(11)
    b = labels_of(DataLoader(ds, batch_size=30, shuffle=True))
    assert a == b


def test_item_path_matches_fast_path():
    n = 9
    item = DataLoader(ItemOnly(n), batch_size=4, shuffle=True, seed=5)
    fast = DataLoader(TensorDataset(np.stack([ItemOnly(n)[i][0] for i in range(n)]), np.arange(n)),
                      batch_size=4, shuffle=True, seed=5)
    for (xi, yi), (xf, yf) in zip(item, fast):
        # default_collate keeps each field's dtype (PyTorch's rule): float64 items, float64 batch
        assert xi.dtype == lamina.float64 and xi.shape == (int(yi.shape[0]), 2, 3)
        np.testing.assert_array_equal(xi.numpy(), xf.numpy())
        np.testing.assert_array_equal(yi.numpy(), yf.numpy())


def test_transform_disables_fast_path():
    class WithTransform(ArrayDataset):
        def __init__(self, x, y):
            super().__init__(x, y)
            self.transform = lambda v: v * 2

        def __getitem__(self, i):
            return self.transform(self.x[i]), self.y[i]

    ds = WithTransform(np.ones((4, 2), np.float32), np.arange(4))
    xb, _ = next(iter(DataLoader(ds, batch_size=4)))
    np.testing.assert_array_equal(xb.numpy(), 2 * np.ones((4, 2)))


def test_subset_and_tensor_inputs():
    x = lamina.tensor(np.arange(20, dtype=np.float32).reshape(10, 2))
    ds = ArrayDataset(x, lamina.tensor(np.arange(10)))
    sub = Subset(ds, range(3, 7))
    assert len(sub) == 4 and sub[0][1] == 3
    assert labels_of(DataLoader(sub, batch_size=10)) == [[3, 4, 5, 6]]
    with pytest.raises(ValueError, match=r"indices: expected values in \[-10, 10\)"):
        Subset(ds, [10])


def test_bad_arguments():
    ds = ArrayDataset(np.zeros((3, 1), np.float32), np.arange(3))
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 0"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=2.5)
    with pytest.raises(TypeError, match="dataset: expected an object with __len__ and __getitem__"):
        DataLoader(42)
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        ArrayDataset(np.zeros((3, 1)), np.arange(2))
