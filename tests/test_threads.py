"""Thread safety: the bindings release the GIL around kernels, so several Python threads run
kernels at once (each with its own OpenMP team and its own thread_local conv workspace).
Every thread must get the result a single thread gets, bit for bit: no shared scratch
buffer, no race on a cached pack, no reduction order that depends on who ran first.
"""
import sys
import threading
import time

import numpy as np

import lamina
import lamina.nn.functional as F
from lamina import _C

N_THREADS = 4
ROUNDS = 12


def _work(seed):
    """A fixed set of kernel calls on inputs derived from `seed`; returns every output."""
    rng = np.random.default_rng(seed)
    out = {}
    # GEMM: big enough to take the packed, multi-threaded path; f32 and f64, with an epilogue.
    a = rng.standard_normal((96, 130)).astype(np.float32)
    b = rng.standard_normal((130, 72)).astype(np.float32)
    bias = rng.standard_normal(72).astype(np.float32)
    c = np.empty((96, 72), np.float32)
    _C.gemm(a, b, c, bias=bias, act="tanh")
    out["gemm32"] = c
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    c64 = np.empty((130, 130), np.float64)
    _C.gemm(a64, a64, c64, trans_a=True)
    out["gemm64_tn"] = c64
    # Convolution forward + backward (im2col workspace is thread_local).
    x = rng.standard_normal((3, 4, 17, 15)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    wb = rng.standard_normal(6).astype(np.float32)
    y = np.empty((3, 6, 9, 8), np.float32)
    _C.conv2d_forward(x, w, wb, y, (2, 2), (1, 1), (1, 1), 1)
    out["conv_y"] = y
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(wb)
    _C.conv2d_backward(x, w, dy, dx, dw, db, (2, 2), (1, 1), (1, 1), 1)
    out.update(conv_dx=dx, conv_dw=dw, conv_db=db)
    # Activations (vectorized exp), softmax, cross-entropy, pooling.
    z = rng.standard_normal(20000).astype(np.float32) * 4
    for kind in ("sigmoid", "tanh", "softplus", "relu"):
        yz = np.empty_like(z)
        _C.act_forward(kind, z, yz)
        dz = np.empty_like(z)
        _C.act_backward(kind, z, yz, np.ones_like(z), dz)
        out[f"act_{kind}"], out[f"act_{kind}_grad"] = yz, dz
    logits = rng.standard_normal((64, 10)).astype(np.float64)
    target = rng.integers(0, 10, 64)
    probs = np.empty_like(logits)
    out["ce"] = np.array(_C.cross_entropy_forward(logits, target, probs))
    out["ce_probs"] = probs
    py = np.empty((3, 4, 9, 8), np.float32)
    pi = np.empty(py.shape, np.int64)
    _C.max_pool2d_forward(x, py, pi, (3, 3), (2, 2), (1, 1), (1, 1), False)
    out["maxpool"], out["maxpool_idx"] = py, pi
    # Through the public API with autograd (grad mode is thread-local).
    xt = lamina.tensor(x, requires_grad=True)
    wt = lamina.tensor(w, requires_grad=True)
    h = F.max_pool2d(F.relu(F.conv2d(xt, wt, padding=1)), 2)
    loss = F.cross_entropy(h.reshape(3, -1)[:, :10], lamina.tensor(target[:3]))
    loss.backward()
    out["api_loss"], out["api_dx"], out["api_dw"] = loss.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()
    return out


def _check_equal(got, ref, where):
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k].tobytes() == ref[k].tobytes(), f"{where}: {k} differs from the single-thread result"


def test_kernels_from_four_python_threads_match_single_thread():
    refs = {s: _work(s) for s in range(N_THREADS)}
    errors = []
    start = threading.Barrier(N_THREADS)

    def run(seed):
        try:
            start.wait()
            for r in range(ROUNDS):
                _check_equal(_work(seed), refs[seed], f"thread {seed} round {r}")
        except Exception as e:  # noqa: BLE001 - reported below with the thread's seed
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors[0]


def test_same_inputs_shared_across_threads():
    """Threads reading the same input arrays (a shared weight) concurrently."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((200, 160)).astype(np.float32)
    w = rng.standard_normal((8, 3, 5, 5)).astype(np.float32)
    x = rng.standard_normal((2, 3, 20, 20)).astype(np.float32)
    ref_c = np.empty((200, 200), np.float32)
    _C.gemm(a, a, ref_c, trans_b=True)
    ref_y = np.empty((2, 8, 16, 16), np.float32)
    _C.conv2d_forward(x, w, None, ref_y, (1, 1), (0, 0), (1, 1), 1)
    results, start = [], threading.Barrier(N_THREADS)

    def run():
        start.wait()
        for _ in range(ROUNDS):
            c = np.empty_like(ref_c)
            _C.gemm(a, a, c, trans_b=True)
            y = np.empty_like(ref_y)
            _C.conv2d_forward(x, w, None, y, (1, 1), (0, 0), (1, 1), 1)
            results.append(c.tobytes() == ref_c.tobytes() and y.tobytes() == ref_y.tobytes())

    threads = [threading.Thread(target=run) for _ in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == N_THREADS * ROUNDS and all(results)


def test_gil_is_released_during_a_long_kernel():
    """While one thread sits in a long GEMM, a pure-Python thread gets to run.

    No timing: with a huge switch interval the interpreter never takes the GIL away from the
    main thread, so the spinning thread can run only if the kernel itself releases the GIL. With
    the GIL held through the call, `spins` stays 0 after any number of calls."""
    a = np.random.default_rng(3).standard_normal((400, 400))
    c = np.empty((400, 400))
    spins = [0]
    go = threading.Event()

    def spinner():
        go.wait()
        for _ in range(200_000):   # pure Python: runs only while it holds the GIL
            spins[0] += 1

    old = sys.getswitchinterval()
    t = threading.Thread(target=spinner)
    t.start()
    try:
        sys.setswitchinterval(1000.0)
        go.set()
        for _ in range(20):        # each call gives the spinner another chance to be scheduled
            _C.gemm_reference(a, a, c)   # the naive loops: a long call that should release the GIL
            if spins[0]:
                break
        seen = spins[0]
    finally:
        sys.setswitchinterval(old)
        t.join(timeout=60)
    assert seen > 0, "the spinning thread never ran while the kernel was executing"


def test_gemm_load_stats_count_parallel_regions():
    """The load diagnostics count what they say: no region on one thread, one per 2-thread GEMM."""
    a = np.random.default_rng(5).standard_normal((256, 256)).astype(np.float32)
    c = np.empty((256, 256), np.float32)
    n0 = _C.get_num_threads()
    try:
        _C.set_num_threads(1)
        _C._gemm_load_stats(True)
        for _ in range(5):
            _C.gemm(a, a, c)
        s = _C._gemm_load_stats(True)
        assert s["parallel_regions"] == 0 and s["worker_starts"] == 0, s
        _C.set_num_threads(2)
        _C._gemm_set_path_override(load_backoff=False)   # a slow join must not drop calls to 1 thread
        for _ in range(5):
            _C.gemm(a, a, c)
        s = _C._gemm_load_stats(False)
        assert s["parallel_regions"] == 5 and s["backoff_single_calls"] == 0, s
        assert s["worker_starts"] <= 5 and s["master_work_us"] > 0, s
        assert _C._gemm_load_stats(True) == s and _C._gemm_load_stats()["parallel_regions"] == 0
    finally:
        _C._gemm_set_path_override()
        _C.set_num_threads(n0)
    np.testing.assert_allclose(c, a @ a, rtol=1e-4, atol=1e-3)


def test_compiled_step_side_by_side_same_bits():
    """With the executor's side-by-side groups on, a compiled LeNet-5 step at 2 threads runs its
    Linear backward products side by side (fewer parallel regions per step) and ends with the
    same weights, bit for bit, as with the groups off (the default) and as at 1 thread."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=(6, 64))

    def train(threads, side_by_side):
        lamina.manual_seed(0)
        model = lamina.models.lenet5()
        opt = lamina.optim.SGD(list(model.parameters()), lr=0.05, momentum=0.9)
        step = lamina.compile(model, F.cross_entropy, opt)
        _C.set_num_threads(threads)
        _C._graph_side_by_side(side_by_side)
        _C._gemm_set_path_override(load_backoff=False)   # a slow join must not drop calls to 1 thread
        step(x[0], y[0])                                  # traces (an eager step)
        _C._gemm_load_stats(True)
        for xb, yb in zip(x[1:], y[1:]):
            step(xb, yb)
        regions = _C._gemm_load_stats(True)["parallel_regions"]
        return [p.detach().numpy().copy() for p in model.parameters()], regions

    n0 = _C.get_num_threads()
    assert _C._graph_side_by_side() is False
    try:
        grouped, r_grouped = train(2, True)
        plain, r_plain = train(2, False)
        single, r_single = train(1, True)
    finally:
        _C._graph_side_by_side(False)
        _C._gemm_set_path_override()
        _C.set_num_threads(n0)
    assert r_single == 0 and 0 < r_grouped < r_plain, (r_grouped, r_plain, r_single)
    for a, b, c in zip(grouped, plain, single):
        assert a.tobytes() == b.tobytes() == c.tobytes()
