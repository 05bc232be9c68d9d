"""The training loop (`fit`), evaluation, and checkpoints with optimizer state.

`fit` is what `lamina train` runs; it is usable directly from Python:

>>> import lamina
>>> from lamina.datasets import MNIST
>>> from lamina.data import DataLoader
>>> from lamina.train import fit
>>> model = lamina.models.mlp()                                              # doctest: +SKIP
>>> opt = lamina.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)          # doctest: +SKIP
>>> history = fit(model, DataLoader(MNIST(train=True), 64, shuffle=True, seed=0),
...               DataLoader(MNIST(train=False), 1000), opt, epochs=3)       # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["make_step", "evaluate", "fit", "cosine_lr", "step_lr", "onecycle_lr", "save_checkpoint", "load_checkpoint",
           "optimizer_state", "load_optimizer_state"]


def make_step(model, loss_fn, optimizer, eager: bool = True) -> Callable:
    """One training step `step(x, y) -> (loss, logits)`: forward, loss, backward, update.

    By default the step is compiled (`lamina.compile`): traced once per input shape, planned
    into one arena and replayed by the C++ executor. `eager=True` runs op by op in Python.
    """
    if not eager:
        from .graph import compile as _compile
        from .tensor import Tensor
        compiled = _compile(model, loss_fn, optimizer)

        def compiled_step(x, y):
            loss, logits = compiled.run(x, y)
            return Tensor._wrap(np.asarray(loss, dtype=logits.dtype)), logits

        return compiled_step

    def step(x, y):
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        return loss, logits

    return step


def _correct(logits, y) -> int:
    pred = np.asarray(logits.detach().numpy() if hasattr(logits, "detach") else logits).argmax(axis=1)
    target = np.asarray(y.detach().numpy() if hasattr(y, "detach") else y)
    return int((pred == target).sum())


def evaluate(model, loader, loss_fn=None) -> Tuple[float, float]:
    """(mean loss, accuracy in [0, 1]) of `model` over `loader`, in eval mode under no_grad."""
    import lamina
    if loss_fn is None:
        loss_fn = lamina.nn.functional.cross_entropy
    was_training = getattr(model, "training", True)
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    try:
        with lamina.no_grad():
            for x, y in loader:
                logits = model(x)
                n = int(y.shape[0])
                total_loss += float(loss_fn(logits, y).item()) * n
                correct += _correct(logits, y)
                seen += n
    finally:
        model.train(was_training)
    if seen == 0:
        return float("nan"), float("nan")
    return total_loss / seen, correct / seen


def cosine_lr(base_lr: float, total_epochs: float, warmup_epochs: float = 0.0) -> Callable[[float], float]:
    """lr(t) for t in epochs (fractional): linear warm-up, then cosine decay to 0 at `total_epochs`.

    >>> f = cosine_lr(0.1, 10); round(f(0), 4), round(f(5), 4), round(f(10), 4)
    (0.1, 0.05, 0.0)
    """
    def lr(t: float) -> float:
        if warmup_epochs > 0 and t < warmup_epochs:
            return base_lr * (t + 1e-3) / warmup_epochs
        span = max(total_epochs - warmup_epochs, 1e-12)
        frac = min(max((t - warmup_epochs) / span, 0.0), 1.0)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * frac))

    return lr


def step_lr(base_lr: float, total_epochs: float, milestones=(0.5, 0.75), gamma: float = 0.1) -> Callable[[float], float]:
    """lr(t): base_lr, times gamma after each milestone (fractions of `total_epochs`).

    >>> f = step_lr(0.1, 10); round(f(4.9), 4), round(f(5), 4), round(f(8), 5)
    (0.1, 0.01, 0.001)
    """
    def lr(t: float) -> float:
        passed = sum(1 for m in milestones if t >= m * total_epochs)
        return base_lr * gamma ** passed

    return lr


def onecycle_lr(max_lr: float, total_epochs: float, pct_start: float = 0.3, div_factor: float = 25.0,
                final_div_factor: float = 1e4) -> Callable[[float], float]:
    """lr(t) of PyTorch's OneCycleLR (cosine annealing): from max_lr / div_factor up to max_lr over
    the first pct_start of training, then down to max_lr / div_factor / final_div_factor.

    >>> f = onecycle_lr(0.1, 10); round(f(0), 4), round(f(3), 4), round(f(10), 8)
    (0.004, 0.1, 4e-07)
    """
    start = max_lr / div_factor
    end = start / final_div_factor

    def lr(t: float) -> float:
        p = min(max(t / max(total_epochs, 1e-12), 0.0), 1.0)
        if p < pct_start:
            return start + (max_lr - start) * 0.5 * (1.0 - math.cos(math.pi * p / pct_start))
        q = (p - pct_start) / max(1.0 - pct_start, 1e-12)
        return end + (max_lr - end) * 0.5 * (1.0 + math.cos(math.pi * q))

    return lr


LR_SCHEDULES = {"cosine": cosine_lr, "step": step_lr, "onecycle": onecycle_lr}


def _set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def fit(model, train_loader, test_loader, optimizer, epochs: int, scheduler=None,
        loss_fn=None, lr_schedule: Optional[Callable[[float], float]] = None,
        start_epoch: int = 0, history: Optional[List[Dict]] = None, eager: bool = True,
        progress: bool = True, log: Optional[Callable[[str], None]] = print,
        on_epoch_end: Optional[Callable[[int, List[Dict]], None]] = None) -> List[Dict]:
    """Train `model` for epochs `start_epoch+1 .. epochs`, evaluating on `test_loader` each epoch.

    `scheduler` (anything with `.step()`) is stepped once per epoch; `lr_schedule(t)` instead
    sets the learning rate before every batch from the fractional epoch `t` (stateless,
    so resuming needs nothing but the epoch). `on_epoch_end(epoch, history)` runs after each
    epoch (the CLI saves its checkpoint there). Returns the history: one dict per epoch with
    train_loss, train_acc, test_loss, test_acc, images_per_s, seconds, lr.
    """
    import lamina
    if loss_fn is None:
        loss_fn = lamina.nn.functional.cross_entropy
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs: expected a non-negative int, got {epochs!r}")
    history = list(history or [])
    step = make_step(model, loss_fn, optimizer, eager)
    n_batches = len(train_loader)
    if hasattr(train_loader, "epoch"):
        train_loader.epoch = start_epoch        # the shuffle order of epoch e depends on e only
    for epoch in range(start_epoch, epochs):
        model.train()
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                       leave=False, dynamic_ncols=True)
        loss_sum, correct, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        for b, (x, y) in enumerate(train_loader):
            if lr_schedule is not None:
                _set_lr(optimizer, lr_schedule(epoch + b / max(n_batches, 1)))
            loss, logits = step(x, y)
            n = int(y.shape[0])
            loss_sum += float(loss.item()) * n
            correct += _correct(logits, y)
            seen += n
            if bar is not None:
                bar.update(1)
                if b % 20 == 0 or b == n_batches - 1:
                    elapsed = max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}%",
                                    img_s=f"{seen / elapsed:.0f}", refresh=False)
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        lr_now = float(optimizer.param_groups[0]["lr"]) if getattr(optimizer, "param_groups", None) else float("nan")
        if scheduler is not None:
            scheduler.step()
        test_loss, test_acc = evaluate(model, test_loader, loss_fn)
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / seen if seen else float("nan"),
            "train_acc": correct / seen if seen else float("nan"),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "images_per_s": seen / seconds if seconds > 0 else float("nan"),
            "seconds": seconds,
            "lr": lr_now,
        }
        history.append(record)
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: train loss {record['train_loss']:.4f} "
                f"acc {100 * record['train_acc']:.2f}% | test loss {test_loss:.4f} "
                f"acc {100 * test_acc:.2f}% | {record['images_per_s']:.0f} img/s, {seconds:.1f} s")
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, history)
    return history


# ---- checkpoints: model + optimizer + loop state in one safetensors file -------------------

_OPT_PREFIX = "optim."


def _is_array(v) -> bool:
    return isinstance(v, np.ndarray) or (hasattr(v, "numpy") and callable(v.numpy) and hasattr(v, "shape"))


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def optimizer_state(optimizer) -> Tuple["OrderedDict[str, np.ndarray]", Dict]:
    """Split `optimizer.state_dict()` into arrays ("optim.state.<i>.<name>") and JSON-able rest."""
    sd = optimizer.state_dict()
    arrays: "OrderedDict[str, np.ndarray]" = OrderedDict()
    scalars: Dict[str, Dict] = {}
    for idx, entry in sd.get("state", {}).items():
        for name, value in entry.items():
            if _is_array(value):
                arrays[f"{_OPT_PREFIX}state.{idx}.{name}"] = np.asarray(
                    value if isinstance(value, np.ndarray) else value.detach().numpy())
            else:
                scalars.setdefault(str(idx), {})[name] = _jsonable(value)
    rest = {"param_groups": _jsonable(sd.get("param_groups", [])), "scalars": scalars}
    return arrays, rest


def load_optimizer_state(optimizer, arrays: Dict, rest: Dict) -> None:
    """Inverse of `optimizer_state`: rebuild the state dict and `optimizer.load_state_dict` it."""
    import lamina
    state: Dict[int, Dict] = {}
    for key, value in arrays.items():
        if not key.startswith(_OPT_PREFIX + "state."):
            continue
        idx, name = key[len(_OPT_PREFIX + "state."):].split(".", 1)
        if isinstance(value, np.ndarray):
            value = lamina.from_numpy(np.array(value, order="C"))
        state.setdefault(int(idx), {})[name] = value
    for idx, entry in rest.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": rest.get("param_groups", [])})


def save_checkpoint(path, model, optimizer=None, epoch: int = 0, extra: Optional[Dict] = None) -> None:
    """Save model parameters, optimizer state, epoch, lamina's RNG state and `extra` (JSON) atomically."""
    from . import random as lrandom
    from .serialization import save
    tensors: "OrderedDict[str, object]" = OrderedDict(model.state_dict())
    for k in tensors:
        if k.startswith(_OPT_PREFIX):
            raise ValueError(f"model parameter name {k!r} clashes with the optimizer prefix {_OPT_PREFIX!r}")
    meta = {"lamina.checkpoint": "1", "epoch": str(int(epoch)),
            "rng_state": json.dumps(lrandom.get_rng_state())}
    if optimizer is not None:
        arrays, rest = optimizer_state(optimizer)
        tensors.update(arrays)
        meta["optim"] = json.dumps(rest)
    if extra:
        meta["extra"] = json.dumps(_jsonable(extra))
    save(tensors, path, metadata=meta)


def load_checkpoint(path, model=None, optimizer=None, restore_rng: bool = True) -> Dict:
    """Load a `save_checkpoint` file into `model`/`optimizer`; returns {"epoch", "extra", ...}."""
    import lamina
    from . import random as lrandom
    from .serialization import load_arrays, load_metadata
    arrays = load_arrays(path)
    meta = load_metadata(path)
    model_sd = OrderedDict((k, lamina.from_numpy(np.array(v, order="C")))
                           for k, v in arrays.items() if not k.startswith(_OPT_PREFIX))
    if model is not None:
        model.load_state_dict(model_sd)
    if optimizer is not None:
        if "optim" not in meta:
            raise ValueError(f"{path}: checkpoint has no optimizer state")
        load_optimizer_state(optimizer, {k: v for k, v in arrays.items() if k.startswith(_OPT_PREFIX)},
                             json.loads(meta["optim"]))
    if restore_rng and "rng_state" in meta:
        lrandom.set_rng_state(json.loads(meta["rng_state"]))
    return {"epoch": int(meta.get("epoch", 0)), "extra": json.loads(meta.get("extra", "{}")),
            "state_dict": model_sd, "metadata": meta}
