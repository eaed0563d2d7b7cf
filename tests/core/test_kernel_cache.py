"""numba's on-disk cache keys a kernel on its own file only. A kernel module that inlines
helpers from another file records that file's digest (``INLINES``), so that editing the
helpers forces an edit of the kernel module, which makes numba rebuild its kernels."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from seqtool.core.rnn import gated, products, vanilla

RNN_DIR = Path(gated.__file__).parent


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("module", [gated, vanilla, products], ids=lambda m: m.__name__)
def test_recorded_digests_match_the_inlined_files(module):
    for name, recorded in module.INLINES.items():
        actual = digest(RNN_DIR / name)
        assert recorded == actual, (
            f"{Path(module.__file__).name} inlines kernels from {name}, which changed: set "
            f'INLINES["{name}"] = "{actual}" there, so that numba rebuilds its cached kernels')


@pytest.mark.parametrize("module", [gated, vanilla, products], ids=lambda m: m.__name__)
def test_every_kernel_module_importing_helpers_records_them(module):
    # a kernel module that imports kernels from elementwise.py or products.py must say so
    source = Path(module.__file__).read_text()
    for helpers in ("elementwise", "products"):
        imports = f"from seqtool.core.rnn.{helpers} import" in source
        assert imports == (f"{helpers}.py" in module.INLINES), helpers
