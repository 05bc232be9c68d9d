"""Guard-check cost of a compiled LeNet-5 step (issue 19): PYTHONPATH=python python tools/guard_cost.py"""
import time, numpy as np, lamina
from lamina.graph.guards import training_flags
lamina.set_num_threads(1)
lamina.manual_seed(0)
model = lamina.models.lenet5()
opt = lamina.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
step = lamina.compile(model, lamina.nn.functional.cross_entropy, opt)
x = np.random.default_rng(0).standard_normal((64, 1, 28, 28)).astype(np.float32)
y = np.random.default_rng(1).integers(0, 10, 64)
step(x, y); step(x, y)
plan = step._last
n = 20000
t0 = time.perf_counter()
for _ in range(n):
    step._lookup([x, y])
t1 = time.perf_counter()
for _ in range(n):
    plan.valid()
t2 = time.perf_counter()
print(f"guards: {len(plan.guards)} model entries + {len(plan.params)} traced leaves")
print(f"lookup (key incl. training flags + all guards): {(t1 - t0) / n * 1e6:.2f} us/call")
print(f"plan.valid() alone: {(t2 - t1) / n * 1e6:.2f} us/call")
ts = []
for _ in range(30):
    t = time.perf_counter(); step(x, y); ts.append(time.perf_counter() - t)
print(f"compiled LeNet-5 step, batch 64, 1 thread: median {np.median(ts) * 1e3:.2f} ms")
