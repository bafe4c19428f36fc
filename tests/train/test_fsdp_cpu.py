"""FSDP on CPU: the trained model families sharded with PyTorch's FSDP2 (``fully_shard`` per decoder layer, 2
gloo processes) train to the weights one process reaches on the same global batches.

The Trainer's own FSDP path (``fsdp = "full_shard auto_wrap"``) cannot be run here: on CPU accelerate runs an
FSDP request as DDP (the wrapped model is ``DistributedDataParallel``), so it needs GPUs."""

from __future__ import annotations

import torch
import torch.multiprocessing as mp

from dist_worker import FSDP_BATCH, fsdp_batches, tiny_train_model, train_fsdp, train_steps


def test_fsdp_two_cpu_processes_match_one(tmp_path):
    mup = True  # the paper recipe's family (Granite with muP multipliers), tied embeddings
    mp.spawn(train_fsdp, args=(2, str(tmp_path / "init"), str(tmp_path), mup), nprocs=2, join=True)
    sharded = torch.load(tmp_path / "fsdp.pt")
    model = tiny_train_model(mup)
    train_steps(model, fsdp_batches(96), slice(0, FSDP_BATCH))
    single = model.state_dict()
    assert sharded.keys() == single.keys()
    for name, value in single.items():
        torch.testing.assert_close(sharded[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert not torch.equal(single["model.layers.0.mlp.up_proj.weight"], tiny_train_model(mup).state_dict()[
        "model.layers.0.mlp.up_proj.weight"])  # the steps changed the weights
