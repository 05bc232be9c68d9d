"""torch.utils.checkpoint: PyTorch recomputes a checkpointed segment's activations during
backward to save memory. lamina runs the segment once and keeps its graph, which gives the same
values and gradients (the memory saving is what it does not have)."""


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               preserve_rng_state=True, **kwargs):
    """function(*args, **kwargs), with gradients as PyTorch's checkpoint gives them."""
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run `functions` (a Sequential or a list of modules) in order on input."""
    mods = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for m in mods:
        input = m(input)
    return input
