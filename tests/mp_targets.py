"""Functions lamina.multiprocessing.spawn runs in child processes (a module of their own: a
spawned child imports the module its target lives in, so it must not import conftest)."""


def square_into(rank, path):
    with open(f"{path}.{rank}", "w") as f:
        f.write(str(rank * rank))


def fail_on_rank_one(rank):
    if rank == 1:
        raise ValueError("rank one fails")
