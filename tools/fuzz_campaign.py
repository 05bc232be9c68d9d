"""The seed campaign the fuzz tools share (tools/fuzz_graph.py, tools/fuzz_kernels.py): each seed
runs as `python <tool> --one SEED` in its own subprocess, so a segfault or a hang is reported with
its seed instead of ending the campaign."""
import os
import subprocess
import sys
import time


def add_campaign_args(ap, default_seeds, default_timeout):
    ap.add_argument("--seeds", default=default_seeds, help=f"a:b, the seeds to run (default {default_seeds})")
    ap.add_argument("--minutes", type=float, help="run seeds from --start until this many minutes pass")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=default_timeout, help="seconds per seed's subprocess")


def spawn(tool, seed, timeout, env=None, describe=lambda seed: ""):
    """None if `tool --one seed` passed in a subprocess, else a message naming the seed and the
    symptom (FAIL with the traceback's end, CRASH with the signal, HANG); describe(seed) is added
    to crash and hang messages (a failure's traceback says what failed)."""
    try:
        r = subprocess.run([sys.executable, os.path.abspath(tool), "--one", str(seed)], capture_output=True,
                           text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"seed {seed}: HANG (over {timeout} s){describe(seed)}"
    if r.returncode == 0:
        return None
    if r.returncode < 0:
        return f"seed {seed}: CRASH signal {-r.returncode}{describe(seed)}\n{r.stderr[-2000:]}"
    return f"seed {seed}: FAIL\n{r.stderr[-3000:]}"


def campaign(args, run_seed, keep=lambda seed: True):
    """Runs run_seed(seed) (a message or None) over --seeds a:b, or from --start for --minutes,
    skipping seeds keep() rejects; prints each failure as it comes. Returns (seeds run, failed seeds)."""
    if args.minutes is not None:
        end, seeds = time.monotonic() + 60 * args.minutes, iter(range(args.start, 1 << 62))
    else:
        a, b = (int(s) for s in args.seeds.split(":"))
        end, seeds = None, iter(range(a, b))
    ran, failures = [], []
    for seed in seeds:
        if end is not None and time.monotonic() > end:
            break
        if not keep(seed):
            continue
        msg = run_seed(seed)
        ran.append(seed)
        if msg:
            failures.append(seed)
            print(msg, flush=True)
    return ran, failures
