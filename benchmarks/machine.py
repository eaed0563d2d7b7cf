"""What the benchmarks print about the machine: which BLAS NumPy and torch use, and the
environment variables that change it. Shared by the benchmark scripts."""

from __future__ import annotations

import os


def blas_report() -> list[str]:
    """Which BLAS NumPy and torch use, and warnings about the environment."""
    lines = []
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                lines.append(f"NumPy/SciPy BLAS: {info.get('internal_api')} "
                             f"{info.get('version')}, architecture "
                             f"{info.get('architecture', '?')}, threads "
                             f"{info.get('num_threads')} ({os.path.basename(info['filepath'])})")
    except ImportError:
        lines.append("threadpoolctl is not installed: NumPy's BLAS architecture unknown")
    import torch

    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        cap = "?"
    lines.append(f"torch CPU capability: {cap}; MKL: {torch.backends.mkl.is_available()}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            lines.append(f"WARNING: {var}={os.environ[var]} is set: OpenBLAS may not use the "
                         f"best kernels for this CPU; run under `env -u OPENBLAS_CORETYPE "
                         f"-u OPENBLAS_L2_SIZE`")
    return lines
