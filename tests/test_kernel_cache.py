"""The kernel cache heals: truncated, foreign and unloadable libraries are rebuilt, a failed rebuild falls back
to the PyTorch path with one warning, killed builds leave nothing behind, and XDG_CACHE_HOME is honoured."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from sparsinglaw import native_build
from sparsinglaw.metrics import kernels as cett_kernels
from sparsinglaw.sparse import native as sparse_native

pytestmark = pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSINGLAW_CACHE", str(tmp_path))
    monkeypatch.setenv("SPARSINGLAW_NATIVE", "1")
    monkeypatch.setattr(cett_kernels, "_state", {})
    monkeypatch.setattr(sparse_native, "_state", {})
    return tmp_path / "kernels"


def _compiler() -> str:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _replace(path: Path, data: bytes) -> None:
    """New bytes under the name as a new file (as a copy or a crashed write would leave it)."""
    path.unlink()
    path.write_bytes(data)


def _load_in_subprocess(cache_root: Path) -> subprocess.CompletedProcess:
    """Load the CETT kernels in a fresh process: a truncated library would kill it with SIGBUS, which a test in
    this process could not survive."""
    code = "from sparsinglaw.metrics import kernels; import sys; sys.exit(0 if kernels.kernels() else 3)"
    env = {**os.environ, "SPARSINGLAW_CACHE": str(cache_root), "SPARSINGLAW_NATIVE": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_build_records_a_hash_and_reuses_the_library(cache):
    assert cett_kernels.kernels() is not None
    (lib,) = cache.glob("*.so")
    assert native_build.verified(lib)
    mtime = lib.stat().st_mtime_ns
    assert native_build.build(cett_kernels.SOURCE, _compiler()) == lib
    assert lib.stat().st_mtime_ns == mtime  # not rebuilt
    assert not [p for p in cache.iterdir() if p.is_dir() or p.name.endswith(".tmp")]


def test_truncated_library_is_rebuilt_not_loaded(cache):
    lib = native_build.build(cett_kernels.SOURCE, _compiler())
    good = lib.read_bytes()
    _replace(lib, good[: len(good) // 3])
    done = _load_in_subprocess(cache.parent)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert lib.read_bytes() == good or native_build.verified(lib)
    assert len(lib.read_bytes()) >= len(good) * 0.9


def test_foreign_library_is_rebuilt(cache):
    """Another valid shared library under our name (its hash does not match the record) is replaced."""
    lib = native_build.build(sparse_native.SOURCE, _compiler())
    other = native_build.build(cett_kernels.SOURCE, _compiler())
    _replace(lib, other.read_bytes())
    assert not native_build.verified(lib)
    loaded = sparse_native.kernels()
    assert loaded is not None and hasattr(loaded, "sparse_gated_ffn")
    assert native_build.verified(lib)


def test_unloadable_library_with_a_matching_record_is_rebuilt(cache):
    """Garbage whose hash was (wrongly) recorded: dlopen fails, the library is rebuilt once and loads."""
    lib = native_build.build(cett_kernels.SOURCE, _compiler())
    _replace(lib, b"not an ELF file")
    (lib.parent / (lib.name + ".sha256")).write_text(native_build._digest(lib))
    assert cett_kernels.kernels() is not None
    assert lib.read_bytes()[:4] == b"\x7fELF"


def test_failed_rebuild_falls_back_with_one_warning(cache, monkeypatch):
    monkeypatch.setenv("CC", str(Path(sys.executable).with_name("no-such-compiler")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cett_kernels.kernels() is None
        assert cett_kernels.kernels() is None  # remembered: no second build, no second warning
    assert len(caught) == 1 and "PyTorch path" in str(caught[0].message)


def test_stale_temp_files_of_killed_builds_are_removed(cache):
    cache.mkdir(parents=True)
    stale = cache / ".cett_kernels-0000.so.1234.tmp"
    stale.write_bytes(b"half")
    old = time.time() - 2 * native_build.STALE_TMP_S
    os.utime(stale, (old, old))
    assert cett_kernels.kernels() is not None
    assert not stale.exists()
    assert not [p for p in cache.iterdir() if p.is_dir()]


def test_xdg_cache_home_is_honoured(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARSINGLAW_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native_build.cache_dir() == tmp_path / "xdg" / "sparsinglaw" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert native_build.cache_dir() == Path.home() / ".cache" / "sparsinglaw" / "kernels"
    monkeypatch.setenv("SPARSINGLAW_CACHE", str(tmp_path / "own"))
    assert native_build.cache_dir() == tmp_path / "own" / "kernels"


def test_a_compiler_without_openmp_builds_the_serial_kernels(cache, monkeypatch):
    """Where -fopenmp fails (clang without libomp) the kernels build without it and compute the same, on one
    thread (tests/metrics/test_cett_kernels.py checks the values against PyTorch)."""
    import torch

    monkeypatch.setattr(native_build, "FLAGS", [*native_build.FLAGS, "-fno-such-openmp-runtime"])
    assert cett_kernels.kernels() is not None
    (built,) = cache.glob("*.so")
    assert b"libgomp" not in built.read_bytes()  # no OpenMP runtime among its needed libraries
    h = torch.rand(130, 96)
    norms, weight_t = torch.rand(96) + 0.5, torch.randn(96, 40)
    levels = torch.tensor([0.1, 0.4])
    magnitude = h.abs() * norms
    expected = torch.stack([((h * (magnitude < t)) @ weight_t).norm(dim=-1) for t in levels])
    torch.testing.assert_close(cett_kernels.anchor_dropped_norms(h, norms, levels, weight_t), expected,
                               rtol=1e-5, atol=1e-5)
