"""F.grid_sample and F.affine_grid against PyTorch (values, input and grid gradients in float64),
over modes, padding modes and align_corners, and a spatial-transformer step."""
import itertools
import warnings

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from conftest import assert_same_results, requires_torch, run_in_both


@pytest.mark.parametrize("mode,padding,align", list(itertools.product(["bilinear", "nearest"],
                                                                       ["zeros", "border", "reflection"],
                                                                       [False, True])))
def test_grid_sample_matches_torch(mode, padding, align):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4))
    grid = rng.uniform(-1.3, 1.3, (2, 3, 4, 2)) + 0.0123     # off the half-pixel kinks
    w = rng.standard_normal((2, 3, 3, 4))

    def program(fw):
        a, g = fw.tensor(x, requires_grad=True), fw.tensor(grid, requires_grad=True)
        y = fw.nn.functional.grid_sample(a, g, mode, padding, align)
        (y * fw.tensor(w)).sum().backward()
        return {"y": y, "dx": a.grad, "dgrid": g.grad}
    assert_same_results(*run_in_both(program), tol=1e-12)


def test_spatial_transformer_step_matches_torch():
    # the STN tutorial's transform: theta from a small localisation net, affine_grid, grid_sample
    x = np.random.default_rng(1).standard_normal((2, 1, 6, 6))

    def program(fw):
        loc = fw.nn.Sequential(fw.nn.Flatten(), fw.nn.Linear(36, 6))
        with fw.no_grad():
            loc[1].weight.mul_(0.1)
            loc[1].bias.copy_(fw.tensor([1.0, 0, 0, 0, 1, 0]))
        xs = fw.tensor(x, requires_grad=True)
        theta = loc(xs).view(-1, 2, 3)
        grid = fw.nn.functional.affine_grid(theta, xs.size(), align_corners=False)
        y = fw.nn.functional.grid_sample(xs, grid, align_corners=False)
        (y * y).sum().backward()
        return {"y": y, "dx": xs.grad, "dw": loc[1].weight.grad, "db": loc[1].bias.grad}
    assert_same_results(*run_in_both(program), tol=1e-11)


def test_grid_sample_misuse():
    x = lamina.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="grid"):
        F.grid_sample(x, lamina.zeros(1, 2, 2, 3), align_corners=False)
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(x, lamina.zeros(1, 2, 2, 2), padding_mode="wrap", align_corners=False)
    with pytest.warns(UserWarning, match="align_corners"):
        F.grid_sample(x, lamina.zeros(1, 2, 2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.affine_grid(lamina.zeros(1, 2, 3), (1, 1, 2, 2), align_corners=False)
