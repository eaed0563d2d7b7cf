"""numba's on-disk cache keys a kernel on its own file only, while seqtool's kernels inline
helpers from other files and compile in the product tuning. seqtool.core.rnn.jit stamps
every kernel's cache entry with the digest of every kernel module of seqtool/core/rnn (found
by reading the files) and the tuning: editing any of them, or adding one, invalidates the
entry; nothing needs to be kept up to date by hand."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seqtool.core.rnn import elementwise, gated, jit, products, tuning, vanilla

ROOT = Path(__file__).resolve().parents[2]


def test_every_file_with_kernels_is_a_kernel_module():
    found = jit.kernel_modules()
    for module in (elementwise, gated, jit, products, tuning, vanilla):
        assert Path(module.__file__).resolve() in found, module.__name__
    names = {path.name for path in found}
    assert "stack.py" not in names and "lengths.py" not in names  # no kernels there


@pytest.fixture
def rnn_copy(tmp_path) -> Path:
    copy = tmp_path / "rnn"
    shutil.copytree(jit.RNN_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def stamp_of(directory: Path) -> str:
    return jit.sources_digest(jit.kernel_modules(directory))


@pytest.mark.parametrize("helper", ["elementwise.py", "products.py", "tuning.py", "jit.py"])
def test_editing_a_helper_changes_the_stamp(rnn_copy, helper):
    before = stamp_of(rnn_copy)
    assert before == jit.sources_digest(jit.kernel_modules())  # the copy is the real thing
    path = rnn_copy / helper
    path.write_text(path.read_text() + "\n# an edit\n")
    assert stamp_of(rnn_copy) != before


def test_a_new_kernel_module_counts_without_being_listed(rnn_copy):
    before = stamp_of(rnn_copy)
    (rnn_copy / "extra").mkdir()
    (rnn_copy / "extra" / "toy.py").write_text(
        "from seqtool.core.rnn.jit import kernel\n\n\n@kernel\ndef _toy(x):\n    return x\n")
    assert stamp_of(rnn_copy) != before


def test_editing_a_file_without_kernels_keeps_the_stamp(rnn_copy):
    before = stamp_of(rnn_copy)
    path = rnn_copy / "stack.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    assert stamp_of(rnn_copy) == before


# ---------------------------------------------------------------------------------------
# End to end, in processes over a copy of the package (its own __pycache__)

PROBE = """
import json
from seqtool.core.rnn import elementwise, jit
kernel = elementwise._sigmoid
before = jit.is_cached(kernel)
value = kernel(0.25)
print(json.dumps({"cached_before": before, "value": value,
                  "hits": sum(kernel.stats.cache_hits.values()),
                  "misses": sum(kernel.stats.cache_misses.values()),
                  "cached_after": jit.is_cached(kernel)}))
"""


@pytest.fixture
def package_copy(tmp_path) -> Path:
    shutil.copytree(ROOT / "seqtool", tmp_path / "seqtool",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def probe(package: Path, **env_changes) -> dict:
    import json

    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT", tuning.PLAIN_VARIABLE,
                        tuning.TUNING_VARIABLE)}
    env.update(env_changes, PYTHONPATH=str(package))
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                            text=True, timeout=600, check=False, cwd=package)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_cache_is_used_and_an_edited_helper_invalidates_it(package_copy):
    first = probe(package_copy)
    assert not first["cached_before"] and first["misses"] == 1 and first["cached_after"]
    second = probe(package_copy)  # a new process loads the kernel from the cache
    assert second["cached_before"] and second["hits"] == 1 and second["misses"] == 0
    assert second["value"] == first["value"]
    # products.py is not _sigmoid's file, but a kernel module: the entry is stale now
    helper = package_copy / "seqtool" / "core" / "rnn" / "products.py"
    helper.write_text(helper.read_text() + "\n# an edit\n")
    third = probe(package_copy)
    assert not third["cached_before"] and third["misses"] == 1 and third["cached_after"]


def test_another_tuning_has_a_cache_of_its_own(package_copy):
    assert probe(package_copy)["cached_after"]
    other = probe(package_copy, SEQTOOL_PRODUCT_TUNING="tiled_from_rows=9")
    assert not other["cached_before"] and other["misses"] == 1
    assert probe(package_copy, SEQTOOL_PRODUCT_TUNING="tiled_from_rows=9")["hits"] == 1
    assert probe(package_copy)["hits"] == 1  # the default's entry is still there


def test_another_optimisation_level_has_a_cache_of_its_own(package_copy):
    """numba's own cache keys on neither NUMBA_OPT nor a kernel's callees: without seqtool's
    stamp, a kernel built at level 1 (the quick compiles of tests/compiling.py) would be
    handed to a run at the default level 3."""
    quick = probe(package_copy, NUMBA_OPT="1")
    assert not quick["cached_before"] and quick["misses"] == 1
    default = probe(package_copy)
    assert not default["cached_before"] and default["misses"] == 1
    assert probe(package_copy, NUMBA_OPT="1")["hits"] == 1
    assert default["value"] == quick["value"]
