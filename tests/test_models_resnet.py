"""resnet_mnist's BasicBlock (conv-BN-ReLU-conv-BN + skip, 1x1 conv-BN projections), lenet5(norm=True),
and the recipe options of `lamina train` (--weight-decay, --schedule)."""
import math

import numpy as np
import pytest

import lamina
from lamina import cli, nn
from lamina.models.resnet import BasicBlock
from lamina.train import cosine_lr, onecycle_lr, step_lr

from conftest import require_mnist


def test_basic_block_structure_and_shapes():
    same = BasicBlock(8)
    assert same.downsample is None
    assert same.conv1.bias is None and same.conv2.bias is None
    assert tuple(same(lamina.randn(2, 8, 6, 6)).shape) == (2, 8, 6, 6)
    down = BasicBlock(8, 16, stride=2)
    assert [type(m).__name__ for m in down.downsample] == ["Conv2d", "BatchNorm2d"]
    assert down.downsample[0].kernel_size == (1, 1) and down.downsample[0].stride == (2, 2)
    assert tuple(down(lamina.randn(2, 8, 7, 7)).shape) == (2, 16, 4, 4)
    assert BasicBlock(8, 16).downsample is not None    # width change alone projects too


def test_basic_block_output_is_relu_of_branch_plus_skip():
    lamina.manual_seed(0)
    blk = BasicBlock(3).eval()
    x = lamina.randn(2, 3, 5, 5)
    branch = blk.bn2(blk.conv2(lamina.relu(blk.bn1(blk.conv1(x)))))
    np.testing.assert_array_equal(blk(x).detach().numpy(), np.maximum(branch.detach().numpy() + x.detach().numpy(), 0))


@pytest.mark.parametrize("width,in_channels,expected", [(16, 1, 77754), (4, 1, 5142), (8, 3, 19954)])
def test_resnet_mnist_parameter_counts(width, in_channels, expected):
    # stem w*in*9 + BN; block1 2 (w*w*9) + 2 BN; block2/3 conv1 + conv2 + 1x1 projection, 3 BN each; fc.
    w = width
    count = (w * in_channels * 9 + 2 * w) + (2 * w * w * 9 + 4 * w)
    for cin, cout in ((w, 2 * w), (2 * w, 4 * w)):
        count += cin * cout * 9 + cout * cout * 9 + cin * cout + 6 * cout
    count += 4 * w * 10 + 10
    assert count == expected
    net = lamina.models.resnet_mnist(width=width, in_channels=in_channels)
    assert sum(p.numel() for p in net.parameters()) == expected
    assert tuple(net(lamina.zeros(2, in_channels, 28, 28)).shape) == (2, 10)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 1 + 2 + 3 + 3


def test_resnet_mnist_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        lamina.models.resnet_mnist(width=0)


def test_lenet5_norm_variant():
    net = lamina.models.lenet5(norm=True)
    kinds = [type(m).__name__ for m in net]
    assert kinds.count("BatchNorm2d") == 2 and kinds.count("BatchNorm1d") == 2
    assert net.c1.bias is None and net.output.bias is not None
    plain = lamina.models.lenet5()
    # Conv/linear biases before BN become BN's shift; each BN adds a scale per channel.
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in plain.parameters()) + 6 + 16 + 120 + 84
    assert tuple(net(lamina.zeros(3, 1, 28, 28)).shape) == (3, 10)


def test_schedules():
    cos, step, one = cosine_lr(0.1, 10), step_lr(0.1, 10), onecycle_lr(0.1, 10)
    assert cos(0) == pytest.approx(0.1) and cos(10) == pytest.approx(0.0)
    assert [step(t) for t in (0, 4.99, 5, 7.4, 7.5, 10)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert one(0) == pytest.approx(0.004) and one(3) == pytest.approx(0.1)
    assert one(10) == pytest.approx(0.1 / 25 / 1e4)
    ts = np.linspace(0, 10, 101)
    lrs = [one(t) for t in ts]
    peak = int(np.argmax(lrs))
    assert ts[peak] == pytest.approx(3.0)
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))      # rises, then falls
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))
    assert not any(math.isnan(v) for v in lrs)


def test_cli_recipe_options_parse_and_reject():
    args = cli.build_parser().parse_args(["train", "--model", "resnet", "--schedule", "onecycle",
                                          "--weight-decay", "5e-4"])
    assert (args.schedule, args.weight_decay) == ("onecycle", 5e-4)
    plain = cli.build_parser().parse_args(["train"])
    cli._resolve_defaults(plain)
    assert (plain.schedule, plain.weight_decay, plain.width) == ("cosine", 0.0, None)
    for argv in (["train", "--schedule", "linear"], ["train", "--weight-decay", "-1"]):
        with pytest.raises(SystemExit):
            cli.main(argv)


def test_cli_resnet_defaults_are_the_fashion_recipe_and_flags_override_them():
    args = cli.build_parser().parse_args(["train", "--model", "resnet", "--dataset", "fashion-mnist", "--augment"])
    cli._resolve_defaults(args)
    assert (args.epochs, args.batch_size, args.lr, args.momentum) == (30, 128, 0.1, 0.9)
    assert (args.schedule, args.weight_decay, args.width) == ("onecycle", 5e-4, 24)
    args = cli.build_parser().parse_args(["train", "--model", "resnet", "--width", "8", "--schedule", "step",
                                          "--weight-decay", "0", "--lr", "0.02"])
    cli._resolve_defaults(args)
    assert (args.schedule, args.weight_decay, args.width, args.lr) == ("step", 0.0, 8, 0.02)
    model = cli._make_model("resnet", args.width)
    assert tuple(model.stem.weight.shape) == (8, 1, 3, 3)
    assert tuple(cli._make_model("resnet").stem.weight.shape) == (24, 1, 3, 3)


def test_cli_width_is_refused_for_models_without_one(capsys):
    with pytest.raises(SystemExit, match="--width applies only to --model resnet"):
        cli.main(["train", "--model", "lenet5", "--width", "8", "--no-download", "--data", "/nonexistent"])


def test_cli_trains_resnet_with_schedule_and_weight_decay(tmp_path, capsys):
    data = require_mnist()
    rc = cli.main(["train", "--no-progress", "--model", "resnet", "--epochs", "1", "--limit-train", "512",
                   "--limit-test", "200", "--batch-size", "64", "--schedule", "step", "--weight-decay", "5e-4",
                   "--data", str(data), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    sd = lamina.load(tmp_path / "model.safetensors")
    assert int(sd["stem_bn.num_batches_tracked"].item()) == 8        # 512 / 64 steps, compiled
    assert float(np.abs(sd["stem_bn.running_mean"].numpy()).sum()) > 0
