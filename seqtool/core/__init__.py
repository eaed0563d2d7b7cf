"""The numerics of seqtool: NumPy (and Numba for the recurrent kernels), nothing else.

Nothing here imports typer, rich, yaml or the rest of seqtool, so a notebook can use it
directly::

    from seqtool.core.attention import attend
    from seqtool.core.selectors import select
"""
