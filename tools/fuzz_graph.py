"""Fuzz the one-rule backward of add/sub/mul/div/matmul: random small programs, checked three ways.

Each seed builds a random program (a chain or DAG over add, sub, mul, div and (batched) matmul
with fan-out, x - x, x * x, shared and frozen operands, broadcast biases (F,), (C,1,1), Python
scalars; float32 or float64; batch 1, odd or 0) and checks:
  1. eager lamina vs PyTorch: forward and every gradient (float64 tight, float32 loose);
  2. lamina.compile'd training steps (SGD or Adam) vs the same eager steps, BIT FOR BIT: loss,
     gradients and parameters after 3 steps, with train/eval switches and set_num_threads
     changes between steps, and (some seeds) one thread compiling while two run eager;
  3. bad input (a wrong shape, a non-tensor operand) raises ValueError or TypeError.

    python tools/fuzz_graph.py --seeds 0:200          # each seed in its own subprocess
    python tools/fuzz_graph.py --minutes 15 --start 1000
    python tools/fuzz_graph.py --one 17               # run one seed in this process

Found and fixed: an intermediate with three or more gradient contributions (seeds 3097, 3146,
2036) was summed in another order compiled than eager (eager swept depth-first; both now go in
reverse creation order), tests/test_fuzz_regressions.py. Still compared with a tolerance: a
parameter read by two instructions, whose second contribution the compiled GEMM accumulates
with beta = 1 (one rounding fewer than eager's separate add).

A seed whose subprocess dies (segfault), hangs past --timeout, or fails a check is printed with
its seed and symptom; the exit status is 1 if any seed failed.
"""
import argparse
import os
import sys
import threading

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fuzz_campaign import add_campaign_args, campaign, spawn  # noqa: E402

STEPS = 3


class Program:
    """A random straight-line program over named values. Instructions are (op, out, a, b) with a
    and b names of earlier values, parameters, or ("scalar", float)."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.kind = str(rng.choice(["2d", "4d", "3d"]))
        self.dtype = np.float64 if rng.random() < 0.5 else np.float32
        self.batch = int(rng.choice([0, 1, 1, 3, 5, 7]))
        self.opt = str(rng.choice(["sgd", "adam"]))
        self.concurrent = rng.random() < 0.25
        self.threads = [int(t) for t in rng.choice([1, 2, 3], size=STEPS)]
        self.modes = [bool(m) for m in rng.random(STEPS) < 0.7]     # True: train()
        F = int(rng.integers(1, 5))
        if self.kind == "2d":
            self.x_shape = (self.batch, F)
            bias_shapes = [(F,), (1, F), (F,)]
            self.mat_shape = (F, F)
        elif self.kind == "4d":
            C, H = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            self.x_shape = (self.batch, C, H, F)
            bias_shapes = [(C, 1, 1), (F,), (1, C, 1, 1)]
            self.mat_shape = (F, F)                      # x @ W over the last dim
        else:
            M = int(rng.integers(1, 4))
            B = 1 if rng.random() < 0.4 else int(rng.integers(2, 4))
            self.batch = B if self.batch != 0 else 0
            self.x_shape = (self.batch, M, F)
            bias_shapes = [(F,), (M, 1), (F,)]
            self.mat_shape = (self.batch, F, F)          # batched (B,M,K)@(B,K,N)
        self.params = {}
        self.frozen = set()
        for i, s in enumerate(bias_shapes):
            self.params[f"b{i}"] = s
        for i in range(2):
            self.params[f"w{i}"] = self.mat_shape
        for name in self.params:
            if rng.random() < 0.2:
                self.frozen.add(name)
        if all(n in self.frozen for n in self.params):
            self.frozen.discard("w0")
        self.init = {n: (rng.standard_normal(s) * 0.5).astype(self.dtype) for n, s in self.params.items()}
        self.init["x"] = rng.standard_normal(self.x_shape).astype(self.dtype)
        self.init["y"] = rng.standard_normal(self.x_shape).astype(self.dtype)
        self.code = []
        pool = ["x"]
        for i in range(int(rng.integers(2, 8))):
            op = str(rng.choice(["add", "sub", "mul", "div", "matmul", "self"]))
            a = pool[int(rng.integers(len(pool)))]
            out = f"v{i}"
            if op == "matmul":
                if self.kind == "3d" and self.batch == 0:
                    op = "add"
                else:
                    self.code.append(("matmul", out, a, f"w{int(rng.integers(2))}"))
                    pool.append(out)
                    continue
            if op == "self":                              # x - x, x + x, x * x: one value twice
                self.code.append((str(rng.choice(["add", "sub", "mul"])), out, a, a))
                pool.append(out)
                continue
            r = rng.random()
            if r < 0.35:
                b = f"b{int(rng.integers(len(bias_shapes)))}"
            elif r < 0.5:
                b = ("scalar", float(np.round(rng.uniform(0.5, 2.0), 3)))
            else:
                b = pool[int(rng.integers(len(pool)))]
            if rng.random() < 0.2 and op in ("add", "mul", "sub"):
                a, b = b, a                               # the operand with the bias shape first
            if op == "div":
                # keep the denominator away from 0: d = b * b + 1
                if isinstance(b, tuple):
                    self.code.append(("div", out, a, b))
                else:
                    self.code.append(("mul", out + "s", b, b))
                    self.code.append(("add", out + "d", out + "s", ("scalar", 1.0)))
                    self.code.append(("div", out, a, out + "d"))
            else:
                self.code.append((op, out, a, b))
            pool.append(out)
        # the output sums several live values (fan-out of the pool) so gradients meet
        outs = [pool[-1]] + [pool[int(rng.integers(len(pool)))] for _ in range(int(rng.integers(0, 3)))]
        for j, o in enumerate(outs[1:]):
            self.code.append(("add", f"o{j}", outs[0] if j == 0 else f"o{j - 1}", o))
        # end on a trainable bias so the loss always has a parameter to train
        last = f"o{len(outs) - 2}" if len(outs) > 1 else outs[0]
        trainable = [n for n in ("b0", "b1", "b2") if n not in self.frozen] or ["b0"]
        self.frozen.discard(trainable[0])
        self.code.append(("add", "result", last, trainable[int(rng.integers(len(trainable)))]))
        self.result = "result"

    @property
    def shared_weight(self):
        """A parameter used twice: its compiled gradient accumulates its second part into the
        first (a GEMM with beta = 1, or reduce then +=), eager adds the two parts, so the sums
        round differently (accepted, as tests/test_matmul_batched.py and
        tests/test_one_backward.py do for a shared weight or bias)."""
        # b * b in one instruction is one rule's two products, summed alike in both modes
        used = [v for _, _, a, b in self.code for v in {a, b} if isinstance(v, str) and v in self.params]
        return len(used) != len(set(used))

    def run(self, x, params):
        env = dict(params)
        env["x"] = x

        def val(n):
            return n[1] if isinstance(n, tuple) else env[n]
        for op, out, a, b in self.code:
            va, vb = val(a), val(b)
            if op == "add":
                env[out] = va + vb
            elif op == "sub":
                env[out] = va - vb
            elif op == "mul":
                env[out] = va * vb
            elif op == "div":
                env[out] = va / vb
            else:
                env[out] = va @ vb
        r = env[self.result]
        if r is x or not hasattr(r, "shape") or tuple(r.shape) != self.x_shape:
            r = r + x * 0.5                               # the loss needs the input's shape
        return r

    def __repr__(self):
        return (f"seed={self.seed} kind={self.kind} dtype={np.dtype(self.dtype).name} x={self.x_shape} "
                f"opt={self.opt} frozen={sorted(self.frozen)} threads={self.threads} modes={self.modes} "
                f"concurrent={self.concurrent}\n  code={self.code}")


def _lamina_model(prog):
    import lamina
    from lamina import nn

    class Fuzz(nn.Module):
        def __init__(self):
            super().__init__()
            for n in prog.params:
                setattr(self, n, nn.Parameter(prog.init[n].copy(), requires_grad=n not in prog.frozen))

        def forward(self, x):
            return prog.run(x, {n: getattr(self, n) for n in prog.params})
    del lamina
    return Fuzz()


def _tol(prog):
    return (1e-10, 1e-12) if prog.dtype == np.float64 else (2e-4, 1e-5)


def check_against_torch(prog):
    import torch
    import lamina
    from lamina import nn
    rtol, atol = _tol(prog)
    model = _lamina_model(prog)
    x = lamina.tensor(prog.init["x"].copy(), requires_grad=True)
    loss = nn.functional.mse_loss(model(x), lamina.tensor(prog.init["y"]))
    loss.backward()
    tp = {n: torch.tensor(prog.init[n].copy(), requires_grad=n not in prog.frozen) for n in prog.params}
    tx = torch.tensor(prog.init["x"].copy(), requires_grad=True)
    tloss = torch.nn.functional.mse_loss(prog.run(tx, tp), torch.tensor(prog.init["y"]))
    tloss.backward()
    _close("loss", loss.detach().numpy(), tloss.detach().numpy(), rtol, atol, prog)
    _close("x.grad", x.grad.numpy(), tx.grad.numpy(), rtol, atol, prog)
    for n in prog.params:
        p = getattr(model, n)
        if n in prog.frozen or tp[n].grad is None:       # frozen or unused: no gradient in either
            if p.grad is not None:
                raise AssertionError(f"{n}: a gradient where PyTorch has none")
            continue
        _close(f"{n}.grad", p.grad.numpy(), tp[n].grad.numpy(), rtol, atol, prog)


def _close(what, got, want, rtol, atol, prog):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape} != {want.shape}")
    if got.dtype != want.dtype:
        raise AssertionError(f"{what}: dtype {got.dtype} != {want.dtype}")
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what, equal_nan=True)


def _optimizer(prog, model):
    import lamina
    ps = [p for p in model.parameters() if p.requires_grad]
    return lamina.optim.SGD(ps, lr=0.05, momentum=0.9) if prog.opt == "sgd" else lamina.optim.Adam(ps, lr=0.01)


def _train(prog, compiled, threads=True):
    """STEPS steps; returns [(loss, {grads}, {params})] per step."""
    import lamina
    from lamina import nn
    model = _lamina_model(prog)
    opt = _optimizer(prog, model)
    loss_fn = nn.functional.mse_loss
    step = lamina.compile(model, loss_fn, opt) if compiled else None
    out = []
    for i in range(STEPS):
        if threads:
            lamina.set_num_threads(prog.threads[i])
        model.train(prog.modes[i])
        x, y = prog.init["x"] * (1 + 0.1 * i), prog.init["y"]
        if compiled:
            loss = step(x, y)
        else:
            opt.zero_grad()
            t = loss_fn(model(lamina.tensor(x)), lamina.tensor(y))
            t.backward()
            opt.step()
            loss = t.item()
        out.append((loss, {n: _grad(getattr(model, n)) for n in prog.params},
                    {n: getattr(model, n).detach().numpy().copy() for n in prog.params}))
    return out


def _grad(p):
    return None if p.grad is None else p.grad.numpy().copy()


def _same(a, b, prog, what):
    if prog.shared_weight:
        return _near(a, b, prog, what)
    for i, ((la, ga, pa), (lb, gb, pb)) in enumerate(zip(a, b)):
        if not (la == lb or (np.isnan(la) and np.isnan(lb))):
            raise AssertionError(f"{what} step {i}: loss {la!r} != {lb!r}")
        for n in ga:
            if (ga[n] is None) != (gb[n] is None):
                raise AssertionError(f"{what} step {i}: {n}.grad is {ga[n]} vs {gb[n]}")
            np.testing.assert_array_equal(ga[n], gb[n], err_msg=f"{what} step {i}: {n}.grad")
        for n in pa:
            np.testing.assert_array_equal(pa[n], pb[n], err_msg=f"{what} step {i}: param {n}")


def _near(a, b, prog, what):
    rtol, atol = _tol(prog)
    rtol, atol = rtol * 10, atol * 10          # three steps of drift from one rounding difference
    for i, ((la, ga, pa), (lb, gb, pb)) in enumerate(zip(a, b)):
        _close(f"{what} step {i}: loss", la, lb, rtol, atol, prog)
        for n in ga:
            if (ga[n] is None) != (gb[n] is None):
                raise AssertionError(f"{what} step {i}: {n}.grad is {ga[n]} vs {gb[n]}")
            if ga[n] is not None:
                _close(f"{what} step {i}: {n}.grad", ga[n], gb[n], rtol, atol, prog)
        for n in pa:
            _close(f"{what} step {i}: param {n}", pa[n], pb[n], rtol, atol, prog)


def check_compiled(prog):
    import lamina
    before = lamina.get_num_threads()
    try:
        eager = _train(prog, compiled=False)
        compiled = _train(prog, compiled=True)
        _same(eager, compiled, prog, "compiled vs eager")
        if prog.concurrent:
            check_concurrent(prog, eager)
    finally:
        lamina.set_num_threads(before)


def check_concurrent(prog, want):
    """One thread compiles and runs steps while two others run eager; all must equal `want`."""
    results, errors = {}, []

    def work(name, compiled):
        try:
            results[name] = _train(prog, compiled=compiled, threads=False)
        except BaseException as e:          # reported below with the thread's name
            errors.append((name, e))
    ts = [threading.Thread(target=work, args=(n, c)) for n, c in (("compiled", True), ("eager1", False),
                                                                      ("eager2", False))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    if any(t.is_alive() for t in ts):
        raise AssertionError("concurrent: a thread hung")
    if errors:
        raise AssertionError(f"concurrent: {errors[0][0]} raised {errors[0][1]!r}") from errors[0][1]
    # the thread counts differ from `want`'s run, so compare with a tolerance across threads ...
    rtol, atol = _tol(prog)
    for name, got in results.items():
        for (la, ga, pa), (lb, gb, pb) in zip(got, want):
            _close(f"concurrent {name} loss", la, lb, rtol, atol, prog)
            for n in ga:
                if ga[n] is not None or gb[n] is not None:
                    _close(f"concurrent {name} {n}.grad", ga[n], gb[n], rtol, atol, prog)
    # ... and the compiled thread against an eager thread run alike, bit for bit
    _same(results["eager1"], results["compiled"], prog, "concurrent compiled vs eager")


def check_bad_input(prog):
    import lamina
    from lamina import nn
    model = _lamina_model(prog)
    x = lamina.tensor(prog.init["x"])
    bad = [
        ("add a string", lambda: x + "a", TypeError),
        ("add a wrong shape", lambda: x + lamina.tensor(np.ones(prog.x_shape[:-1] + (7,), prog.dtype))
         if prog.x_shape[-1] > 1 else lamina.tensor(np.ones((4, 5))) + lamina.tensor(np.ones((3, 5))), ValueError),
        ("matmul a wrong shape", lambda: x @ lamina.tensor(np.ones((9, 2), prog.dtype)), ValueError),
        ("divide by None", lambda: x / None, TypeError),
    ]
    for what, fn, kind in bad:
        try:
            fn()
        except kind:
            pass
        except Exception as e:               # noqa: BLE001 -- the wrong kind is the finding
            raise AssertionError(f"bad input ({what}): expected {kind.__name__}, got {e!r}") from e
        else:
            raise AssertionError(f"bad input ({what}): no error")
    if any("matmul" == c[0] for c in prog.code) and prog.batch > 0:
        step = lamina.compile(model, nn.functional.mse_loss, _optimizer(prog, model))
        step(prog.init["x"], prog.init["y"])
        wrong = np.ones(prog.x_shape[:-1] + (prog.x_shape[-1] + 1,), prog.dtype)
        try:
            step(wrong, wrong)
        except (ValueError, TypeError):
            pass
        except Exception as e:               # noqa: BLE001
            raise AssertionError(f"bad input (compiled step, wrong feature size): got {e!r}") from e
        else:
            raise AssertionError("bad input (compiled step, wrong feature size): no error")


def run_one(seed):
    prog = Program(seed)
    try:
        check_against_torch(prog)
        check_compiled(prog)
        check_bad_input(prog)
    except AssertionError as e:
        raise AssertionError(f"{prog!r}\n{e}") from e
    return prog


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_campaign_args(ap, default_seeds="0:50", default_timeout=60.0)
    ap.add_argument("--one", type=int, help="run this seed in this process (raises on a failure)")
    args = ap.parse_args(argv)
    if args.one is not None:
        run_one(args.one)
        return 0
    ran, failures = campaign(args, lambda seed: spawn(__file__, seed, args.timeout))
    print(f"{len(ran)} cases, {len(failures)} failed: {failures}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
