"""Run one of these example scripts on the first N images of the real data, unchanged.

    python examples/pytorch/run_subset.py --limit 2000 examples/pytorch/quickstart.py [args...]

The scripts name torchvision's root ("data", "../data"); this runner points MNIST and
FashionMNIST at $LAMINA_DATA (or ../shared/data) instead and keeps the first N images of each
split, so a smoke test runs the same code a user would in a few seconds.
"""
import argparse
import os
import runpy
import sys
from pathlib import Path


def _data_root() -> str:
    env = os.environ.get("LAMINA_DATA")
    if env:
        return env
    return str(Path(__file__).resolve().parents[3] / "shared" / "data")


def _sliced(cls, data_root: str, limit: int):
    class Sliced(cls):
        def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
            del root  # the script's own root is replaced by the real data directory
            super().__init__(data_root, train=train, transform=transform, target_transform=target_transform,
                             download=False)
            self.data, self.targets = self.data[:limit], self.targets[:limit]

    Sliced.__name__ = Sliced.__qualname__ = cls.__name__
    return Sliced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="images per split (default 2000)")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    from lamina import datasets
    root = _data_root()
    datasets.MNIST = _sliced(datasets.MNIST, root, ns.limit)
    datasets.FashionMNIST = _sliced(datasets.FashionMNIST, root, ns.limit)
    sys.argv = [ns.script] + ns.args
    runpy.run_path(ns.script, run_name="__main__")


if __name__ == "__main__":
    main()
