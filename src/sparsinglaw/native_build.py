"""Building and loading this package's small C kernels: compiled on first use with the system C compiler,
loaded by ctypes (no PyTorch headers involved, so a build takes about a second).

Libraries are cached under ``$SPARSINGLAW_CACHE`` (default ``~/.cache/sparsinglaw``)/kernels, keyed by the
source, the compiler flags and the CPU (``-march=native`` code must not run on another CPU model). Without a
compiler, or with ``SPARSINGLAW_NATIVE=0``, ``load`` returns None and callers use their PyTorch path (same
results).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-shared", "-fPIC"]


def _cpu_identity() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def cache_dir() -> Path:
    return Path(os.environ.get("SPARSINGLAW_CACHE", Path.home() / ".cache" / "sparsinglaw")) / "kernels"


def build(source: Path, compiler: str) -> Path:
    """The compiled shared library of ``source`` (built once per source, flags, compiler and CPU)."""
    text = source.read_bytes()
    key = hashlib.sha256(text + " ".join(FLAGS).encode() + _cpu_identity().encode() + compiler.encode())
    target = cache_dir() / f"{source.stem}-{key.hexdigest()[:16]}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target and rename: concurrent processes never load a half-written library.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        subprocess.run([compiler, *FLAGS, str(source), "-o", str(built), "-lm"], check=True,
                       capture_output=True, text=True, timeout=120)
        os.replace(built, target)
    return target


def load(source: Path, declare: Callable[[ctypes.CDLL], ctypes.CDLL], what: str) -> ctypes.CDLL | None:
    """``declare(CDLL(build(source)))``, or None (disabled, no compiler, not Linux, or the build failed, which
    warns once with the compiler's first words)."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if os.environ.get("SPARSINGLAW_NATIVE", "1") == "0" or not compiler or platform.system() != "Linux":
        return None
    try:
        return declare(ctypes.CDLL(str(build(source, compiler))))
    except (OSError, subprocess.SubprocessError) as error:
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
