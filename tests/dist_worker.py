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


INPUT_CONFIG = {"methods": ("cett", "teal-uniform"), "p": 1.0, "batch_size": 2, "max_sparse_passes": 6}


def measure_inputs_sharded(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """The projection-input target's PPL-p% on this process's shard (``INPUT_CONFIG``)."""
    from helpers import random_eval_data, tiny_llama
    from sparsinglaw.inputs import InputConfig, measure_inputs

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        result = measure_inputs(tiny_llama("silu", seed=3), random_eval_data(n_sequences=10),
                                InputConfig(**INPUT_CONFIG))
        with open(os.path.join(out_dir, f"inputs{rank}.json"), "w") as handle:
            json.dump(result.to_dict(), handle)
    finally:
        dist.destroy_process_group()


FSDP_STEPS, FSDP_BATCH, FSDP_SEQ = 3, 4, 16


def fsdp_batches(vocab: int) -> torch.Tensor:
    """The global batches both the FSDP ranks and the single process train on."""
    return torch.randint(0, vocab, (FSDP_STEPS, FSDP_BATCH, FSDP_SEQ), generator=torch.Generator().manual_seed(5))


def tiny_train_model(mup: bool):
    from sparsinglaw.train.config import ModelConfig
    from sparsinglaw.train.modeling import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(activation="relu", hidden_size=32, num_layers=2, head_dim=16, mup=mup)
    return build_model(cfg, 96, FSDP_SEQ, bos_id=0, eos_id=0)


def train_steps(model, batches: torch.Tensor, rows: slice) -> None:
    """AdamW steps on ``batches[:, rows]``: the loss is the mean over the global batch (this rank's rows are
    a share of it), so summed gradients equal the single-process ones."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for batch in batches:
        ids = batch[rows]
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def train_fsdp(rank: int, world_size: int, init_file: str, out_dir: str, mup: bool) -> None:
    """FSDP2 (``fully_shard`` per decoder layer, then the root) on gloo: each rank trains on its half of every
    global batch; the full state dict is gathered and saved by rank 0."""
    from torch.distributed.fsdp import fully_shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = tiny_train_model(mup)
        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model)
        share = FSDP_BATCH // world_size
        train_steps(model, fsdp_batches(96), slice(rank * share, (rank + 1) * share))
        full = {name: p.full_tensor() for name, p in model.state_dict().items()}
        if rank == 0:
            torch.save(full, os.path.join(out_dir, "fsdp.pt"))
    finally:
        dist.destroy_process_group()
