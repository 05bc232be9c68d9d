"""Stack dumps of hung test subprocesses (MPI ranks, the CLI).

The tests that start Python subprocesses put this folder first on their PYTHONPATH, so every
such process imports this module at start-up. With LAMINA_TEST_STACKS naming a folder, SIGUSR1
makes the process write the Python stack of each of its threads to <folder>/<pid>.txt and carry
on: a test past its deadline signals its processes, shows where each one waits, then kills them.
Without LAMINA_TEST_STACKS this module does nothing.
"""
import os

_folder = os.environ.get("LAMINA_TEST_STACKS")
if _folder and os.path.isdir(_folder):
    import faulthandler
    import signal

    # Kept open for the life of the process: faulthandler writes to it from the signal handler.
    _stack_file = open(os.path.join(_folder, f"{os.getpid()}.txt"), "w")
    faulthandler.register(signal.SIGUSR1, file=_stack_file, all_threads=True)
