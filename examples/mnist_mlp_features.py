"""Train an MLP on MNIST briefly and look at what its first layer learned (lecture,
"Feature learning"): each hidden unit's 784 incoming weights drawn as a 28x28 image.

    python examples/mnist_mlp_features.py [--data DIR] [--epochs 2] [--quick] [--out DIR]

Data: --data, else $LAMINA_DATA, else /work/shared/data (files in <dir>/mnist/).
--quick trains on 10,000 images and tests on 2,000 (seconds, for smoke tests).
Writes <out>/mlp_features.png (and <out>/mlp_curves.png) when matplotlib is installed.
"""
import argparse
import os
import sys
import time

import lamina
from lamina.data import DataLoader, Subset
from lamina.datasets import MNIST, MNISTNotFoundError
from lamina.summary import summary
from lamina.train import cosine_lr, fit


def load(root, quick, download):
    train = MNIST(root, train=True, download=download)
    test = MNIST(root, train=False, download=download)
    if quick:
        train, test = Subset(train, range(10_000)), Subset(test, range(2_000))
    return train, test


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("LAMINA_DATA", "/work/shared/data"))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--quick", action="store_true", help="10k training images, 2k test images")
    p.add_argument("--download", action="store_true", help="download MNIST if it is missing")
    p.add_argument("--out", default=".", help="directory for the pictures")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    try:
        train, test = load(args.data, args.quick, args.download)
    except MNISTNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    lamina.manual_seed(args.seed)
    model = lamina.models.mlp((784, args.hidden, 10))
    print(summary(model, (1, 28, 28)).render(show_passthrough=False))
    opt = lamina.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    t0 = time.perf_counter()
    history = fit(model, DataLoader(train, batch_size=64, shuffle=True, seed=args.seed),
                  DataLoader(test, batch_size=1000), opt, epochs=args.epochs,
                  lr_schedule=cosine_lr(0.05, args.epochs), progress=False, log=None)
    for epoch, h in enumerate(history, 1):
        print(f"epoch {epoch}: "
              f"train loss {h['train_loss']:.4f}, train acc {100 * h['train_acc']:.2f}%, "
              f"test acc {100 * h['test_acc']:.2f}%")
    print(f"trained on {len(train)} images in {time.perf_counter() - t0:.1f} s; "
          f"test accuracy {100 * history[-1]['test_acc']:.2f}% on {len(test)} images")

    try:
        import lamina.viz as viz
        os.makedirs(args.out, exist_ok=True)
        feat = viz.filters(model.fc1.weight, path=os.path.join(args.out, "mlp_features.png"),
                           title=f"first-layer features of a 784-{args.hidden}-10 MLP")
        curves = viz.curves(history, path=os.path.join(args.out, "mlp_curves.png"))
        print(f"saved {feat} and {curves}")
    except ImportError as e:
        print(f"no pictures: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
