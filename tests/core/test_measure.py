"""This machine's tuning: every product method gives the same numbers, the thresholds follow
from the timings, the stored tuning is read only for its own CPU and never breaks a run,
and `seqtool compile` measures it once."""

from __future__ import annotations

import json
import os
from concurrent.futures import Future

import numpy as np
import pytest
from harness import assert_close

from seqtool.core.errors import InputError
from seqtool.core.rnn import measure, numpy_blas, tuning

NEVER = measure.NEVER


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,K,N", [(1, 16, 64), (1, 40, 72), (2, 32, 128), (3, 64, 24),
                                   (4, 128, 512), (7, 33, 65), (8, 32, 128), (17, 64, 256)])
def test_every_measured_method_gives_the_product(B, K, N, dtype):
    rng = np.random.default_rng(B * 1000 + K + N)
    a = rng.standard_normal((B, K)).astype(dtype)
    w = rng.standard_normal((K, N)).astype(dtype)
    expected = a.astype(np.float64) @ w.astype(np.float64)
    methods = ["blas", "row" if B == 1 else "tiles"]
    if dtype == np.float32 and B > 1:
        methods.append("blocked")
    results = {}
    for method in methods:
        out = np.full((B, N), np.nan, dtype)
        measure._REPEAT[method](out, a, w, 1)
        assert_close(out, expected)
        results[method] = out
    # the methods differ only in rounding: as close to each other as to the reference
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for method, out in results.items():
        np.testing.assert_allclose(out, results["blas"], rtol=tol, atol=tol * np.abs(expected).max(),
                                   err_msg=method)


def _timings(tiles, blas, row=None, blocked=None):
    """Synthetic timings: each method's seconds as a function of (B, K, N)."""
    out = {}
    for name in ("float32", "float64"):
        t = {}
        for B in (1, *measure.FEW_ROWS, *measure.MANY_ROWS):
            for K, N in measure.WEIGHTS:
                if B == 1:
                    t[(B, K, N)] = {"row": row(B, K, N), "blas": blas(B, K, N)}
                else:
                    t[(B, K, N)] = {"tiles": tiles(B, K, N), "blas": blas(B, K, N)}
                    if name == "float32" and B in measure.FEW_ROWS:
                        t[(B, K, N)]["blocked"] = blocked(B, K, N)
        for B in (*measure.MANY_ROWS, *measure.STRIP_MANY_ROWS):
            for K, N in measure.STRIP_WEIGHTS:
                t[(B, K, N)] = {"tiles": tiles(B, K, N), "blas": blas(B, K, N)}
        out[name] = t
    return out


def test_the_strip_bound_follows_where_the_tiles_win_summed_over_row_counts():
    strips = [measure.strip_bytes(K) for K, _ in measure.STRIP_WEIGHTS]
    blas = lambda B, K, N: float(B)  # noqa: E731
    # winning everywhere: up to the longest strip measured, and no further
    d = measure.decide(_timings(tiles=lambda B, K, N: 0.5 * B, blas=blas, row=blas,
                                blocked=blas))
    assert d["tiled_strip_below"] == strips[-1]
    # losing from K = 1536 on: the strips of K = 512 and 1024 stay the tiles'
    d = measure.decide(_timings(tiles=lambda B, K, N: (0.5 if K < 1536 else 1.5) * B,
                                blas=blas, row=blas, blocked=blas))
    assert strips[1] <= d["tiled_strip_below"] < strips[2]
    # one row count lost by a little does not outweigh the others won by far (the sum);
    # a loss at the largest K decides even after a win below it
    d = measure.decide(_timings(tiles=lambda B, K, N: 1.05 * B if B == 64 else 0.5 * B,
                                blas=blas, row=blas, blocked=blas))
    assert d["tiled_strip_below"] == strips[-1]
    d = measure.decide(_timings(tiles=lambda B, K, N: (1.5 if K in (512, 2048) else 0.5) * B,
                                blas=blas, row=blas, blocked=blas))
    assert strips[2] <= d["tiled_strip_below"] < strips[3]
    # in float64 only: lost too (one bound serves both dtypes)
    t = _timings(tiles=lambda B, K, N: 0.5 * B, blas=blas, row=blas, blocked=blas)
    for B in measure.MANY_ROWS:
        t["float64"][(B, *measure.STRIP_WEIGHTS[-1])]["tiles"] = 2.0 * B
    assert strips[2] <= measure.decide(t)["tiled_strip_below"] < strips[3]


def test_many_rows_have_a_strip_bound_of_their_own():
    strips = [measure.strip_bytes(K) for K, _ in measure.STRIP_WEIGHTS]
    blas = lambda B, K, N: float(B)  # noqa: E731
    many = measure.STRIP_MANY_ROWS[0]
    # on 128 rows the tiles lose from K = 1536 on, on fewer rows never (Zen 4, float32)
    d = measure.decide(_timings(
        tiles=lambda B, K, N: (1.2 if B >= many and K >= 1536 else 0.8) * B,
        blas=blas, row=blas, blocked=blas))
    assert d["tiled_strip_below"] == strips[-1]
    assert strips[1] <= d["tiled_strip_below_128"] < strips[2]
    # and the other way round: a loss on 8-64 rows does not bound 128 rows
    d = measure.decide(_timings(tiles=lambda B, K, N: (1.2 if B < many else 0.8) * B,
                                blas=blas, row=blas, blocked=blas))
    assert d["tiled_strip_below"] < strips[0]
    assert d["tiled_strip_below_128"] == strips[-1]


def test_tiles_that_win_everywhere_take_every_row_count():
    d = measure.decide(_timings(tiles=lambda B, K, N: 1.0, blas=lambda B, K, N: 2.0,
                                row=lambda B, K, N: 1.0, blocked=lambda B, K, N: 3.0))
    assert d["tiled_from_rows"] == 8
    assert d["tiled_w_below"] == NEVER  # they never lost
    assert d["row_w_below"] == NEVER
    assert d["blocked_few_rows"] == NEVER


def test_blas_that_wins_on_many_rows_and_large_weights_bounds_each_band():
    # tiles win while B · K · N < 2 ** 20 multiply-adds; the single row's while K · N < 2 ** 14
    def tiles(B, K, N):
        return 1.0 if B * K * N < 2 ** 20 else 3.0

    d = measure.decide(_timings(tiles=tiles, blas=lambda B, K, N: 2.0,
                                row=lambda B, K, N: 1.0 if K * N < 2 ** 14 else 3.0,
                                blocked=lambda B, K, N: 1.5 if K * N >= 2 ** 17 else 5.0))
    assert d["tiled_from_rows"] == NEVER
    # band 8: loses first at (256, 1024) · 8 = 2 ** 21 → w of 256·1024 float32 = 1 MiB
    assert d["tiled_w_below_8"] == 256 * 1024 * 4
    assert d["tiled_w_below_16"] == 128 * 512 * 4
    assert d["tiled_w_below_32"] == 128 * 512 * 4  # (64, 256): 32 · 2 ** 14 < 2 ** 20 wins
    assert d["tiled_w_below_64"] == 64 * 256 * 4
    # 4 rows lose from (256, 1024) (4 · 2 ** 18): float32's bytes are the smaller
    assert d["tiled_w_below"] == 256 * 1024 * 4
    assert d["row_w_below"] == 64 * 256 * 4
    assert d["blocked_few_rows"] == 256 * 1024  # beyond the tiles, the blocked loop wins
    # the result is a tuning the kernels can be compiled with
    assert tuning.ProductTuning(**d).compiled()


def test_a_threshold_takes_the_dtype_that_loses_first():
    def tiles(B, K, N):  # float64's products are slower: it needs bytes, not elements
        return 1.0 if K * N < 2 ** 15 else 3.0

    t = _timings(tiles=tiles, blas=lambda B, K, N: 2.0, row=lambda B, K, N: 1.0,
                 blocked=lambda B, K, N: 9.0)
    for shape, times in t["float64"].items():
        if "tiles" in times and shape[1] * shape[2] >= 2 ** 13:
            times["tiles"] = 3.0  # float64 loses from (64, 256) on
    d = measure.decide(t)
    assert d["tiled_w_below"] == 64 * 256 * 8  # float64's first loss, in its bytes



def test_blas_takes_over_only_where_it_keeps_winning():
    """Zen 4 with AVX-512 (the timings of `seqtool compile --retune` there, rounded): BLAS
    ties with the tiles on small weights and falls 1.4-4× behind them on large ones. The
    tiles keep every size; a first tie must not send every larger weight to BLAS (that
    tuning made the float32 LSTM at (100, 32, 128) 1.04× torch → 0.92×)."""
    def blas(B, K, N):
        return 1.0 if K * N <= 128 * 512 else 3.0

    def tiles(B, K, N):  # a hair slower than BLAS up to (128, 512), far faster beyond
        return 1.05 if K * N <= 128 * 512 else 1.0

    d = measure.decide(_timings(tiles=tiles, blas=blas, row=tiles,
                                blocked=lambda B, K, N: 9.0))
    assert [d[f"tiled_w_below_{B}"] for B in measure.MANY_ROWS] == [NEVER] * 4
    assert d["tiled_w_below"] == d["row_w_below"] == NEVER
    # BLAS that wins from (128, 512) on, with one tie of the tiles' at (256, 1024) in float32:
    # it takes over from (128, 512) only where it wins at every larger size
    t = _timings(tiles=lambda B, K, N: 1.0 if K * N < 128 * 512 else 3.0,
                 blas=lambda B, K, N: 2.0, row=lambda B, K, N: 1.0,
                 blocked=lambda B, K, N: 9.0)
    for (B, K, N), times in t["float32"].items():
        if (K, N) == (256, 1024) and "tiles" in times:
            times["tiles"] = 1.0
    d = measure.decide(t)
    assert d["tiled_w_below"] == 128 * 512 * 8  # float64's, whose BLAS wins from (128, 512)
    t["float64"][(4, 256, 1024)]["tiles"] = 1.0  # the same tie in float64 too
    t["float64"][(2, 256, 1024)]["tiles"] = 1.0
    assert measure.decide(t)["tiled_w_below"] == 512 * 2048 * 4

MACHINE = "Some CPU 25 1 / 0123456789abcdef / lib.so:cblas_{}"


def test_the_stored_tuning_is_read_back_for_its_own_cpu_only(tmp_path):
    path = tmp_path / "deep" / "seqtool-tuning.json"
    fields = {"tiled_from_rows": NEVER, "tiled_w_below_8": 1 << 21, "row_w_below": 65536,
              "split_from": 1 << 22}
    tuning.write_store(path, MACHINE, fields, {"seconds": 1.5})
    assert not list(path.parent.glob(".*partial"))  # written whole, then renamed
    assert tuning.read_store(path, MACHINE) == (fields, "measured on this machine")
    stored, why = tuning.read_store(path, "Another CPU / fedcba9876543210 / lib.so:x")
    assert stored == {} and "another CPU" in why
    stored, why = tuning.read_store(path, MACHINE.replace("lib.so:cblas_{}", "other.so:x"))
    assert stored == {} and "another BLAS" in why
    t = tuning.from_environment({}, base=fields)
    assert (t.tiled_from_rows, t.tiled_w_below_8, t.split_from) == (NEVER, 1 << 21, 1 << 22)
    # the environment overrides the stored values, which override the defaults
    t = tuning.from_environment({"SEQTOOL_PRODUCT_TUNING": "tiled_w_below_8=5"}, base=fields)
    assert (t.tiled_w_below_8, t.row_w_below, t.recycle_from) == (5, 65536,
                                                                  tuning.ProductTuning().recycle_from)


@pytest.mark.parametrize("content, why", [
    (b"{not json", "unreadable"),
    (b"\xff\xfe\x00", "unreadable"),
    (json.dumps({"version": 99, "machine": MACHINE, "tuning": {}}).encode(), "another version"),
    (json.dumps({"version": 1, "machine": MACHINE, "tuning": {"tiles": 3}}).encode(), "damaged"),
    (json.dumps({"version": 1, "machine": MACHINE,
                 "tuning": {"tiled_from_rows": -4}}).encode(), "damaged"),
    (json.dumps({"version": 1, "machine": MACHINE, "tuning": {"plain": True}}).encode(),
     "damaged"),
    (json.dumps([1, 2]).encode(), "another version"),
])
def test_a_damaged_store_leaves_the_defaults_and_says_why(tmp_path, content, why):
    path = tmp_path / "seqtool-tuning.json"
    path.write_bytes(content)
    stored, note = tuning.read_store(path, MACHINE)
    assert stored == {} and why in note


def test_where_the_tuning_is_kept(tmp_path):
    assert tuning.store_path({"SEQTOOL_TUNING_FILE": "none"}) is None
    assert tuning.store_path({"SEQTOOL_TUNING_FILE": str(tmp_path / "t.json"),
                              "NUMBA_CACHE_DIR": "/x"}) == tmp_path / "t.json"
    assert tuning.store_path({"NUMBA_CACHE_DIR": str(tmp_path)}) == \
        tmp_path / tuning.STORE_NAME
    in_tree = tuning.store_path({})
    assert in_tree.name == tuning.STORE_NAME
    assert in_tree.parent.name in ("__pycache__", "numba")
    with pytest.raises(InputError):
        tuning.write_store(tmp_path / "t.json", MACHINE, {"tiled_from_rows": -1}, {})
    assert not (tmp_path / "t.json").exists()
    assert tuning.machine_id() == tuning.machine_id()
    assert tuning.machine_id().endswith(" / " + numpy_blas.KEY)


class _InProcess:
    """A stand-in for the process pool of `seqtool compile` that runs the job here."""

    calls = 0

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        type(self).calls += 1
        future = Future()
        future.set_result(fn(*args))
        return future


def test_compile_measures_once_then_reads_what_it_kept(tmp_path, monkeypatch):
    import concurrent.futures

    from seqtool.commands import compile as compile_command
    from seqtool.commands.events import Events
    from seqtool.config import CompileConfig

    canned = {"tuning": {"tiled_from_rows": NEVER, "tiled_w_below_32": 65536},
              "timings_us": [{"dtype": "float32", "shape": [32, 128, 512], "tiles": 81.4,
                              "blas": 46.4}], "seconds": 7.5}
    monkeypatch.setattr(compile_command, "tune_job", lambda: canned)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", _InProcess)
    path = tmp_path / "kept.json"
    monkeypatch.setenv("SEQTOOL_TUNING_FILE", str(path))
    said = []
    events = Events(notice=said.append)
    _InProcess.calls = 0
    first = compile_command.tune(CompileConfig(), events, None)
    assert first["measured"] and first["values"] == canned["tuning"] and _InProcess.calls == 1
    assert said and "measuring this machine's matrix products" in said[0]
    kept = json.loads(path.read_text())
    assert kept["tuning"] == canned["tuning"] and kept["machine"] == tuning.machine_id()
    assert kept["timings_us"] == canned["timings_us"]
    again = compile_command.tune(CompileConfig(), events, None)
    assert not again["measured"] and again["values"] == canned["tuning"]
    assert _InProcess.calls == 1  # read, not measured again
    compile_command.tune(CompileConfig(retune=True), events, None)
    assert _InProcess.calls == 2
    monkeypatch.setenv("SEQTOOL_TUNING_FILE", str(tmp_path / "file" / "in" / "a" / "file"))
    (tmp_path / "file").write_text("a file where a folder should be")
    with pytest.raises(InputError, match="cannot keep the tuning in .*: a file is in the way"):
        compile_command.tune(CompileConfig(), events, None)
    assert _InProcess.calls == 2  # refused before measuring
    monkeypatch.setenv("SEQTOOL_TUNING_FILE", "none")
    assert compile_command.tune(CompileConfig(), events, None)["path"] is None


def test_on_many_rows_the_tiles_must_win_by_a_margin():
    # 5 % faster than BLAS alone is a tie inside a kernel: BLAS keeps 8+ rows, not few rows
    d = measure.decide(_timings(tiles=lambda B, K, N: 0.95, blas=lambda B, K, N: 1.0,
                                row=lambda B, K, N: 0.95, blocked=lambda B, K, N: 3.0))
    smallest = measure.WEIGHTS[0][0] * measure.WEIGHTS[0][1] * 4
    for B in measure.MANY_ROWS:
        assert d[f"tiled_w_below_{B}"] == smallest
    assert d["tiled_w_below"] == NEVER and d["row_w_below"] == NEVER
    assert d["tiled_from_rows"] == NEVER  # not by the margin: the bands decide


def test_a_cpu_without_avx512_starts_from_the_avx2_defaults():
    assert tuning.host_defaults({"avx2", "avx512f", "fma"}) == {}
    assert tuning.host_defaults({"neon", "asimd"}) == {}
    avx2 = tuning.host_defaults({"avx", "avx2", "fma"})
    assert avx2 == tuning.AVX2_DEFAULTS
    t = tuning.ProductTuning(**avx2)  # valid, and the bands are what keep BLAS on many rows
    assert t.tiled_from_rows == NEVER and t.tiled_w_below_64 <= t.tiled_w_below_8 < 1 << 20
    # the order at import: defaults, then the stored tuning, then the environment
    stored = {"tiled_w_below_8": 7}
    t = tuning.from_environment({"SEQTOOL_PRODUCT_TUNING": "row_w_below=3"},
                                base={**avx2, **stored})
    assert (t.tiled_w_below_8, t.row_w_below, t.tiled_w_below_16) == (
        7, 3, tuning.AVX2_DEFAULTS["tiled_w_below_16"])
    expected = tuning.DEFAULTS.compiled() if not tuning.STORED else None
    if expected is not None and not os.environ.get("SEQTOOL_PRODUCT_TUNING") \
            and not os.environ.get("SEQTOOL_PLAIN_PRODUCTS"):
        assert tuning.TUNING.compiled() == expected


def test_a_measurement_that_fails_is_one_run_error_and_keeps_nothing(tmp_path, monkeypatch):
    import concurrent.futures

    from seqtool.commands import compile as compile_command
    from seqtool.commands.events import Events
    from seqtool.config import CompileConfig
    from seqtool.core.errors import RunError

    def broken():
        raise MemoryError("no room for the timings")

    monkeypatch.setattr(compile_command, "tune_job", broken)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", _InProcess)
    monkeypatch.setenv("SEQTOOL_TUNING_FILE", str(tmp_path / "kept.json"))
    with pytest.raises(RunError, match="measuring this machine's matrix products failed: "
                                       "MemoryError: no room for the timings"):
        compile_command.tune(CompileConfig(), Events(), None)
    assert not (tmp_path / "kept.json").exists()
