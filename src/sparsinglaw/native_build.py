"""Building and loading this package's small C kernels: compiled on first use, loaded by ctypes.

Libraries are cached under ``$SPARSINGLAW_CACHE`` (default ``~/.cache/sparsinglaw``)/kernels, keyed by source,
flags and CPU. Without a compiler, or with ``SPARSINGLAW_NATIVE=0``, ``load`` returns None and callers use
their PyTorch path. A library is built to a temporary file, renamed into place and recorded with its
SHA-256, checked before loading (``dlopen`` of a truncated library dies of SIGBUS); a bad one is rebuilt once."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from sparsinglaw.fileio import cache_root

# -fopenmp: kernels that split rows over threads use OpenMP, which binds to the libgomp PyTorch has already
# loaded (same soname), so they share its thread pool and its thread count (torch.set_num_threads). A compiler
# without an OpenMP runtime (clang without libomp) builds them with SERIAL_FLAGS instead: one thread each.
FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC"]
SERIAL_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-shared", "-fPIC"]
STALE_TMP_S = 600  # a build takes about a second; a temp file this old belongs to a killed build


def _cpu_identity() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def cache_dir() -> Path:
    """Where built libraries live: ``$SPARSINGLAW_CACHE``, ``$XDG_CACHE_HOME/sparsinglaw`` or
    ``~/.cache/sparsinglaw``, then ``kernels``."""
    return cache_root() / "kernels"


def target_path(source: Path, compiler: str) -> Path:
    """The cache path of the library built from ``source`` with ``compiler`` on this CPU."""
    text = source.read_bytes()
    key = hashlib.sha256(text + " ".join(FLAGS).encode() + _cpu_identity().encode() + compiler.encode())
    return cache_dir() / f"{source.stem}-{key.hexdigest()[:16]}.so"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hash_record(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def verified(target: Path) -> bool:
    """True when ``target`` exists and its bytes hash to the value recorded when it was built."""
    try:
        return _hash_record(target).read_text().strip() == _digest(target)
    except OSError:
        return False


def _remove_stale_temps(folder: Path) -> None:
    """Delete temporary files left by builds that were killed (older than ``STALE_TMP_S``)."""
    now = time.time()
    for tmp in folder.glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink()
        except OSError:
            pass  # another process removed or renamed it first


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build(source: Path, compiler: str, *, force: bool = False) -> Path:
    """The compiled shared library of ``source`` (built once per source, flags, compiler and CPU; rebuilt when
    its recorded hash does not match, or always with ``force``)."""
    target = target_path(source, compiler)
    if not force and verified(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target.parent)
    # Compile to a temp name in the cache directory and rename: concurrent processes never load a
    # half-written library, and a killed build leaves only a file the next build removes (no directories).
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        try:
            subprocess.run([compiler, *FLAGS, str(source), "-o", str(tmp), "-lm"], check=True,
                           capture_output=True, text=True, timeout=120)
        except subprocess.CalledProcessError:
            subprocess.run([compiler, *SERIAL_FLAGS, str(source), "-o", str(tmp), "-lm"], check=True,
                           capture_output=True, text=True, timeout=120)
        digest = _digest(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_atomically(_hash_record(target), (digest + "\n").encode())
    return target


def _open(source: Path, declare: Callable[[ctypes.CDLL], ctypes.CDLL], compiler: str, force: bool) -> ctypes.CDLL:
    path = build(source, compiler, force=force)
    if not verified(path):  # replaced between the build and here (another process, or a disk fault)
        raise OSError(f"{path} does not match its recorded hash")
    return declare(ctypes.CDLL(str(path)))


def load(source: Path, declare: Callable[[ctypes.CDLL], ctypes.CDLL], what: str) -> ctypes.CDLL | None:
    """``declare(CDLL(build(source)))``, or None (disabled, no compiler, not Linux, or the build failed twice,
    which warns once with the compiler's first words)."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if os.environ.get("SPARSINGLAW_NATIVE", "1") == "0" or not compiler or platform.system() != "Linux":
        return None
    error: Exception | None = None
    for force in (False, True):  # a cached library that will not load (foreign, wrong symbols) is rebuilt once
        try:
            return _open(source, declare, compiler, force)
        except (OSError, AttributeError, subprocess.SubprocessError) as err:
            error = err
    detail = getattr(error, "stderr", "") or error
    warnings.warn(f"{what} not built ({str(detail).strip()[:200]}); using the PyTorch path", stacklevel=3)
    return None


def usable(*tensors) -> bool:
    """True when the kernels can take these tensors: CPU, float32, contiguous."""
    import torch

    return all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in tensors)


def pointer(tensor) -> int | None:
    """The data pointer to hand a kernel (None for an absent optional tensor)."""
    return None if tensor is None else tensor.data_ptr()
