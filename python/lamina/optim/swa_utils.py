"""Stochastic weight averaging, PyTorch's torch.optim.swa_utils: AveragedModel (a running mean,
or an EMA, of a model's parameters), SWALR (anneal each group's lr to a fixed SWA lr) and
update_bn (recompute batch-norm statistics for the averaged weights).

>>> import lamina
>>> from lamina.optim.swa_utils import AveragedModel
>>> net = lamina.nn.Linear(1, 1, bias=False)
>>> swa = AveragedModel(net)
>>> for w in (1.0, 3.0):
...     with lamina.no_grad():
...         _ = net.weight.fill_(w)
...     swa.update_parameters(net)
>>> swa.module.weight.item()
2.0
"""
from __future__ import annotations

import copy
import math

import numpy as np

from ..nn.module import Module
from ..tensor import Tensor, no_grad
from .lr_scheduler import LRScheduler

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_avg_fn", "get_ema_multi_avg_fn", "get_swa_avg_fn",
           "get_swa_multi_avg_fn"]


def get_ema_avg_fn(decay=0.999):
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def get_ema_multi_avg_fn(decay=0.999):
    def ema_update(ema_param_list, current_param_list, _):
        for p_ema, p_model in zip(ema_param_list, current_param_list):
            p_ema.copy_(decay * p_ema + (1 - decay) * p_model)
    return ema_update


def get_swa_multi_avg_fn():
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = float(num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged)
        for p_avg, p_model in zip(averaged_param_list, current_param_list):
            p_avg.copy_(p_avg + (p_model - p_avg) / (n + 1))
    return swa_update


class AveragedModel(Module):
    """A copy of `model` whose parameters (and buffers with use_buffers=True) are averaged by
    update_parameters: the running mean by default, or avg_fn / multi_avg_fn (e.g. EMA)."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", Tensor._wrap(np.zeros((), dtype=np.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model):
        def values(m):
            ps = list(m.parameters())
            return ps + [b for b in m.buffers() if b is not None] if self.use_buffers else ps
        ours, theirs = values(self.module), [p.detach() for p in values(model)]
        n = int(self.n_averaged.item())
        with no_grad():
            if n == 0:
                for p_avg, p in zip(ours, theirs):
                    p_avg.copy_(p)
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn([p for p in ours if p.dtype.kind == "f"],
                                  [p for p, q in zip(theirs, ours) if q.dtype.kind == "f"], self.n_averaged)
            else:
                fn = self.avg_fn or get_swa_avg_fn()
                for p_avg, p in zip(ours, theirs):
                    if p_avg.dtype.kind == "f":
                        p_avg.copy_(fn(p_avg.detach(), p, self.n_averaged))
        if not self.use_buffers:   # the model's buffers as they are (e.g. batch-norm statistics)
            with no_grad():
                for b_avg, b in zip(self.module.buffers(), model.buffers()):
                    if b_avg is not None and b is not None:
                        b_avg.copy_(b)
        self.n_averaged._data[...] = n + 1


@no_grad()
def update_bn(loader, model, device=None):
    """One pass over `loader` in training mode with cumulative (momentum None) batch-norm
    statistics, reset first; each batch is the loader's item or its first element."""
    momenta = {}
    for m in model.modules():
        if hasattr(m, "running_mean") and getattr(m, "running_mean", None) is not None and hasattr(m, "momentum"):
            m.running_mean._data[...] = 0
            m.running_var._data[...] = 1
            if getattr(m, "num_batches_tracked", None) is not None:
                m.num_batches_tracked._data[...] = 0
            momenta[m] = m.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for m in momenta:
        m.momentum = None
    for batch in loader:
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        model(batch)
    for m, momentum in momenta.items():
        m.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to swa_lr over anneal_epochs (cos or linear), then hold it, as
    PyTorch's SWALR."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        swa_lrs = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else [swa_lr] * len(optimizer.param_groups)
        if len(swa_lrs) != len(optimizer.param_groups):
            raise ValueError(f"swa_lr must have the same length as optimizer.param_groups: swa_lr has "
                             f"{len(swa_lrs)}, optimizer.param_groups has {len(optimizer.param_groups)}")
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.anneal_func = ((lambda t: (1 - math.cos(math.pi * t)) / 2) if anneal_strategy == "cos"
                            else (lambda t: t))
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev_lrs)]

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}
