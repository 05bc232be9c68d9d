"""LeNet-5 on MNIST: train it briefly, then count its units, connections and weights the way
the lecture's table does ("Sizes of layers in LeNet").

    python examples/lenet5_mnist.py [--data DIR] [--epochs 1] [--quick] [--out DIR]

Data: --data, else $LAMINA_DATA, else /work/shared/data (files in <dir>/mnist/).
--quick trains on 6,000 images and tests on 1,000 (seconds, for smoke tests). The table is printed for the paper's
32x32 layout (the lecture's numbers) and for the 28x28 model trained here (C1 pads by 2:
same layer sizes, fewer connections, because a padded zero is not a unit).
Writes <out>/lenet5_c1.png and <out>/lenet5_curves.png when matplotlib is installed.
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

# the lecture's table: (units, connections, weights) of C1, S2, C3, S4, F5, F6, output
LECTURE = [(4704, 117_600, 150), (1176, 4704, 0), (1600, 240_000, 2400), (400, 1600, 0),
           (120, 48_000, 48_000), (84, 10_080, 10_080), (10, 840, 840)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("LAMINA_DATA", "/work/shared/data"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="6k training images, 1k test images")
    p.add_argument("--download", action="store_true", help="download MNIST if it is missing")
    p.add_argument("--out", default=".", help="directory for the pictures")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    paper = summary(lamina.models.lenet5(paper=True), (1, 32, 32))
    print("LeNet-5 as in the paper (32x32 input, C3 fully connected):")
    print(paper.render(show_passthrough=False))
    got = [(r.units, r.connections, r.weights) for r in paper.rows if r.kind != "passthrough"]
    match = got == LECTURE
    print(f"matches the lecture's table: {match}\n")

    try:
        train = MNIST(args.data, train=True, download=args.download)
        test = MNIST(args.data, train=False, download=args.download)
    except MNISTNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.quick:
        train, test = Subset(train, range(6_000)), Subset(test, range(1_000))

    lamina.manual_seed(args.seed)
    model = lamina.models.lenet5()
    opt = lamina.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    t0 = time.perf_counter()
    history = fit(model, DataLoader(train, batch_size=64, shuffle=True, seed=args.seed),
                  DataLoader(test, batch_size=1000), opt, epochs=args.epochs,
                  lr_schedule=cosine_lr(0.05, args.epochs), progress=False, log=None)
    for epoch, h in enumerate(history, 1):
        print(f"epoch {epoch}: train loss {h['train_loss']:.4f}, train acc {100 * h['train_acc']:.2f}%, "
              f"test acc {100 * h['test_acc']:.2f}%")
    print(f"trained on {len(train)} images in {time.perf_counter() - t0:.1f} s; "
          f"test accuracy {100 * history[-1]['test_acc']:.2f}% on {len(test)} images\n")

    s = summary(model, (1, 28, 28))
    print("The model trained here (28x28 input, C1 padded by 2):")
    print(s.render(show_passthrough=False))

    try:
        import lamina.viz as viz
        os.makedirs(args.out, exist_ok=True)
        c1 = viz.filters(model.c1.weight, path=os.path.join(args.out, "lenet5_c1.png"),
                         title="LeNet-5 C1 filters (5x5)")
        curves = viz.curves(history, path=os.path.join(args.out, "lenet5_curves.png"))
        print(f"saved {c1} and {curves}")
    except ImportError as e:
        print(f"no pictures: {e}")
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
