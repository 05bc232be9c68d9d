"""lamina.transforms: torchvision's names and rules on uint8 arrays (the PIL stand-in) and Tensors."""
import numpy as np
import pytest

import lamina
from lamina import transforms as T

torch = pytest.importorskip("torch")


def image(h=6, w=5, channels=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels is None else (h, w, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def test_to_tensor_layouts_and_scaling():
    gray, rgb = image(), image(channels=3)
    t = T.ToTensor()(gray)
    assert isinstance(t, lamina.Tensor) and t.shape == (1, 6, 5) and t.dtype == lamina.float32
    np.testing.assert_array_equal(t.numpy()[0], torch.from_numpy(gray).float().div(255).numpy())
    c = T.ToTensor()(rgb)
    assert c.shape == (3, 6, 5)
    np.testing.assert_array_equal(c.numpy(), torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).numpy())
    assert T.ToTensor()(t) is t                                   # a tensor passes through
    with pytest.raises(ValueError, match=r"expected an \(H, W\) or \(H, W, C\) array"):
        T.ToTensor()(np.zeros(3, np.uint8))


def test_normalize_matches_pytorch_and_has_gradients():
    x = lamina.rand(3, 4, 4)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    ours = T.Normalize(mean, std)(x)
    theirs = (torch.from_numpy(x.numpy()) - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    leaf = lamina.rand(1, 2, 2, requires_grad=True)
    T.Normalize((0.5,), (0.25,))(leaf).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), np.full((1, 2, 2), 4.0))
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize((0.0,), (0.0,))
    with pytest.raises(TypeError, match="apply ToTensor first"):
        T.Normalize((0.5,), (0.5,))(image())


def test_compose_lambda_mnist_pipeline():
    pipeline = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,)), T.Lambda(lambda t: t * 2)])
    img = image(28, 28)
    expected = (img.astype(np.float32) / 255 - np.float32(0.1307)) / np.float32(0.3081) * 2
    np.testing.assert_allclose(pipeline(img).numpy()[0], expected, rtol=1e-5, atol=1e-6)
    assert "Normalize" in repr(pipeline)


def _windows(padded, h, w):
    H, W = padded.shape[-2:]
    return {(i, j): padded[..., i:i + h, j:j + w] for i in range(H - h + 1) for j in range(W - w + 1)}


def test_random_crop_is_a_window_of_the_padded_image():
    img = image()
    crop = T.RandomCrop((6, 5), padding=2, fill=0)
    padded = np.pad(img, 2)
    windows = _windows(padded, 6, 5)
    lamina.manual_seed(0)
    seen = set()
    for _ in range(200):
        out = crop(img)
        assert out.shape == (6, 5) and out.dtype == np.uint8
        hits = [k for k, win in windows.items() if np.array_equal(win, out)]
        assert hits
        seen.update(hits)
    assert len(seen) == len(windows)                              # every offset is reachable
    lamina.manual_seed(0)
    again = crop(img)
    lamina.manual_seed(0)
    np.testing.assert_array_equal(crop(img), again)               # follows manual_seed
    t = crop(lamina.tensor(img[None].astype(np.float32)))         # tensors: (..., H, W)
    assert isinstance(t, lamina.Tensor) and t.shape == (1, 6, 5)
    hwc = T.RandomCrop(4, padding=(1, 2))(image(channels=3))
    assert hwc.shape == (4, 4, 3)
    with pytest.raises(ValueError, match="Required crop size"):
        T.RandomCrop(10)(img)


def test_random_horizontal_flip():
    img = image()
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(img), img[:, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(img), img)
    rgb = image(channels=3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(rgb), rgb[:, ::-1, :])
    t = lamina.tensor(img[None].astype(np.float32))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(t).numpy(), t.numpy()[..., ::-1])
    lamina.manual_seed(1)
    flips = sum(np.array_equal(T.RandomHorizontalFlip()(img), img[:, ::-1]) for _ in range(400))
    assert 140 < flips < 260
    with pytest.raises(ValueError, match="p: expected a probability"):
        T.RandomHorizontalFlip(1.5)


def test_random_affine_rotation_and_translation():
    img = image(5, 5)
    # torchvision's sign: a positive angle turns the image counter-clockwise, as np.rot90 does.
    np.testing.assert_array_equal(T.RandomAffine(degrees=(90, 90))(img), np.rot90(img))
    np.testing.assert_array_equal(T.RandomAffine(degrees=0)(img), img)
    lamina.manual_seed(3)
    moved = T.RandomAffine(degrees=0, translate=(0.4, 0.4))(img)
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
              if np.array_equal(moved, _shift(img, dy, dx))]
    assert len(shifts) == 1
    rotated = T.RandomAffine(degrees=30, fill=0)(lamina.tensor(img[None].astype(np.float32)))
    assert rotated.shape == (1, 5, 5)
    with pytest.raises(ValueError, match="translate"):
        T.RandomAffine(0, translate=(1.5, 0))


def _shift(img, dy, dx):
    out = np.zeros_like(img)
    h, w = img.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out
