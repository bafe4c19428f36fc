"""Worker for the 2-process (gloo) sharded-measurement test; importable so torch.multiprocessing can spawn it."""

from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist


def measure_sharded(rank: int, world_size: int, init_file: str, out_dir: str, metric: str) -> None:
    from helpers import random_eval_data, tiny_llama
    from sparsinglaw.measure import MeasureConfig, measure

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        result = measure(tiny_llama("silu", seed=3), random_eval_data(n_sequences=10),
                         MeasureConfig(metric=metric, cett=0.1, p=1.0, batch_size=2))
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
            json.dump(result.to_dict(), handle)
    finally:
        dist.destroy_process_group()
