"""One cell of a study in a process of its own: ``python -m sparsinglaw.study.cell_process STUDY_TOML CELL``
(started by ``study.parallel``; the same ``run_cell`` the sequential runner calls). Its own module, above
the runner, so that the runner can start cells in parallel without the two importing each other.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sparsinglaw.errors import SparsingLawError
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.study.config import load_study
from sparsinglaw.study.parallel import cell_timings
from sparsinglaw.study.runner import Timer, run_cell


def main(argv: list[str]) -> int:
    """The child: one cell of the study in ``argv[0]``, named ``argv[1]`` (``--force`` after them: as the study)."""
    study_file, name = Path(argv[0]), argv[1]
    cfg = load_study(study_file)
    cells = {cell.name: cell for cell in cfg.cells()}
    if name not in cells:
        raise SparsingLawError(f"{study_file} has no cell {name!r}")
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    timer = Timer()
    run_cell(cells[name], cfg, timer, force="--force" in argv[2:])
    atomic_write_json(cell_timings(Path(cfg.out_dir), name), timer.to_dict())
    return 0


if __name__ == "__main__":  # a child: the parent shows the tail of its log when it fails
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        sys.exit(main(sys.argv[1:]))
    except SparsingLawError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
