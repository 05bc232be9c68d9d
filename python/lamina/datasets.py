"""Data sets: an IDX file reader, MNIST and Fashion-MNIST (torchvision's `datasets` names).

>>> from lamina.datasets import MNIST
>>> train = MNIST(train=True)                 # doctest: +SKIP
>>> image, label = train[0]                   # doctest: +SKIP
>>> x, y = train.arrays()                     # doctest: +SKIP  (N,1,28,28) float32, (N,) int64
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

import numpy as np

from ._mnist_files import DatasetNotFoundError, MNISTNotFoundError, _find_file, not_found_error

__all__ = ["resolve_data_root", "read_idx", "MNIST", "FashionMNIST", "MNISTNotFoundError",
           "DatasetNotFoundError", "MNIST_FILES"]

PathLike = Union[str, os.PathLike]

# IDX type byte -> big-endian numpy dtype (the format's own table).
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_MAX_NDIM = 8          # real IDX files have 1-4 dims; more means a corrupt header
_IDX_MAX_BYTES = 1 << 34   # 16 GiB: refuse to even try headers that claim more

# name -> (split, kind); the standard names, stored raw or with ".gz".
MNIST_FILES = {
    "train-images-idx3-ubyte": ("train", "images"),
    "train-labels-idx1-ubyte": ("train", "labels"),
    "t10k-images-idx3-ubyte": ("test", "images"),
    "t10k-labels-idx1-ubyte": ("test", "labels"),
}


def resolve_data_root(root: Optional[PathLike] = None) -> Path:
    """The data directory: `root` if given, else $LAMINA_DATA, else ~/.cache/lamina.

    >>> resolve_data_root("/tmp/data")
    PosixPath('/tmp/data')
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("LAMINA_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lamina"


def _open_bytes(path: Path) -> bytes:
    """Whole (decompressed if .gz) content of `path`; gzip damage becomes ValueError."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
            raise ValueError(f"{path}: not a valid gzip file ({e})") from None
    return raw


def parse_idx(buf: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX content; every inconsistency is a ValueError naming `name`.

    >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])).tolist()
    [7, 9]
    """
    if len(buf) < 4:
        raise ValueError(f"{name}: truncated IDX file: expected at least 4 header bytes, got {len(buf)}")
    zero0, zero1, code, ndim = buf[0], buf[1], buf[2], buf[3]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(f"{name}: wrong IDX magic: expected first two bytes 0x00 0x00, "
                         f"got 0x{zero0:02x} 0x{zero1:02x}")
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02x} (expected one of {known})")
    if not 1 <= ndim <= _IDX_MAX_NDIM:
        raise ValueError(f"{name}: IDX header has {ndim} dimensions (expected 1..{_IDX_MAX_NDIM})")
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise ValueError(f"{name}: truncated IDX header: expected {header_len} bytes for "
                         f"{ndim} dimensions, file has {len(buf)}")
    dims = struct.unpack(f">{ndim}I", buf[4:header_len])
    dtype = _IDX_DTYPES[code]
    expected = dtype.itemsize
    for d in dims:                # Python ints: no overflow however large the header claims
        expected *= d
    actual = len(buf) - header_len
    if expected > _IDX_MAX_BYTES:
        raise ValueError(f"{name}: oversized IDX header: dimensions {dims} claim {expected} bytes "
                         f"of data (limit {_IDX_MAX_BYTES}); file has {actual}")
    if expected != actual:
        what = "truncated IDX file" if actual < expected else "IDX file has trailing bytes"
        raise ValueError(f"{name}: {what}: header dimensions {dims} need {expected} data bytes, "
                         f"file has {actual}")
    arr = np.frombuffer(buf, dtype=dtype, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # native byte order, own (writeable) memory


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a native-endian numpy array.

    Raises ValueError naming the file on a wrong magic, unknown type, truncated data,
    or a header whose dimensions disagree with the file length.
    """
    path = Path(path)
    return parse_idx(_open_bytes(path), str(path))


def _storage(t) -> np.ndarray:
    """The NumPy array behind `.data` / `.targets` (a Tensor, or an array a user assigned)."""
    from .tensor import Tensor
    return t._data if isinstance(t, Tensor) else np.asarray(t)


class MNIST:
    """The MNIST digits from `root`/mnist (IDX files, raw or .gz), downloaded if missing, as
    torchvision's `datasets.MNIST`.

    `root` is the data directory (see `resolve_data_root`; `root` may also be the mnist folder
    itself). Items are `(image, label)`: with no transform, image is a float32 (1, 28, 28)
    Tensor in [0, 1] and label an int; `transform` receives the raw uint8 (28, 28) array
    (where torchvision passes a PIL image) and `target_transform` the int label. `.data` is a
    uint8 (N, 28, 28) Tensor and `.targets` an int64 (N,) Tensor, as torchvision's; both may be
    replaced (by Tensors or NumPy arrays, e.g. sliced to a subset). `.classes` the class names.
    `arrays()` gives the whole split as NumPy arrays at once.

    >>> ds = MNIST("/work/shared/data", train=False, download=False)   # doctest: +SKIP
    >>> len(ds), ds.data.shape, ds[0][1]                               # doctest: +SKIP
    (10000, (10000, 28, 28), 7)
    """

    folder = "mnist"
    title = "MNIST"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]

    @classmethod
    def _download(cls, directory: Path, names) -> None:
        from ._download import download_mnist
        download_mnist(directory, names=names)

    def __init__(self, root: Optional[PathLike] = None, train: bool = True,
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None,
                 download: bool = True):
        self.root = resolve_data_root(root)
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        prefix = "train" if self.train else "t10k"
        images_name = f"{prefix}-images-idx3-ubyte"
        labels_name = f"{prefix}-labels-idx1-ubyte"
        needed = [images_name, labels_name]
        self.mnist_dir = self.root / self.folder
        if (any(_find_file(self.mnist_dir, n) is None for n in needed)
                and all(_find_file(self.root, n) is not None for n in needed)):
            self.mnist_dir = self.root          # `root` is the data set's folder itself: accept it
        missing = [n for n in needed if _find_file(self.mnist_dir, n) is None]
        if missing:
            if not download:
                raise not_found_error(self.title, self.folder)(self.mnist_dir, missing, "download=False")
            self._download(self.mnist_dir, missing)
        images_path = _find_file(self.mnist_dir, images_name)
        labels_path = _find_file(self.mnist_dir, labels_name)
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{images_path}: expected uint8 images of shape (N, rows, cols), "
                             f"got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise ValueError(f"{labels_path}: expected uint8 labels of shape (N,), "
                             f"got {labels.dtype} {labels.shape}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images_path} has {images.shape[0]} images but {labels_path} "
                             f"has {labels.shape[0]} labels")
        if labels.size and labels.max() >= len(self.classes):
            raise ValueError(f"{labels_path}: labels must be in 0..{len(self.classes) - 1}, "
                             f"found {int(labels.max())}")
        from .tensor import Tensor
        self.data = Tensor._wrap(images)
        self.targets = Tensor._wrap(labels.astype(np.int64))
        self._arrays: Optional[Tuple[np.ndarray, np.ndarray]] = None

    @property
    def class_to_idx(self):
        return {name: i for i, name in enumerate(self.classes)}

    def _data_array(self) -> np.ndarray:
        return _storage(self.data)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index):
        from .tensor import Tensor
        image = self._data_array()[index]
        label = int(_storage(self.targets)[index])
        if self.transform is not None:
            image = self.transform(image)
        else:
            image = Tensor._wrap((image.astype(np.float32) / np.float32(255.0))[None])
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def _batch(self, indices):
        """The collated batch [images, labels] in one gather (DataLoader's default-collate path);
        None when a transform must see each item."""
        if self.transform is not None or self.target_transform is not None:
            return None
        from .tensor import Tensor
        x, y = self.arrays()
        idx = np.asarray(indices, dtype=np.int64)
        return [Tensor._wrap(x[idx]), Tensor._wrap(y[idx])]

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        """The whole split: float32 (N, 1, 28, 28) in [0, 1] and int64 (N,) labels (cached).

        Ignores `transform`.
        """
        if self._arrays is None:
            x = self._data_array().astype(np.float32)
            x /= np.float32(255.0)  # same rounding as __getitem__
            self._arrays = (x[:, None, :, :], np.ascontiguousarray(_storage(self.targets), dtype=np.int64))
        return self._arrays

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_arrays"] = None       # DataLoader workers rebuild it rather than receive 188 MB
        return state

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"{type(self).__name__}(split={split}, n={len(self)}, root={str(self.root)!r})"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST from `root`/fashion-mnist: the same IDX files and item rules as
    `MNIST`, ten clothing classes (`.classes`), downloaded from its mirrors with SHA-256 checks.

    >>> ds = FashionMNIST("/work/shared/data", train=False, download=False)   # doctest: +SKIP
    >>> ds.classes[ds[0][1]]                                                   # doctest: +SKIP
    'Ankle boot'
    """

    folder = "fashion-mnist"
    title = "Fashion-MNIST"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]

    @classmethod
    def _download(cls, directory: Path, names) -> None:
        from ._download import download_fashion_mnist
        download_fashion_mnist(directory, names=names)

