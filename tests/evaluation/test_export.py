"""``sparsinglaw export``: the directory loads with plain transformers (sparsinglaw not importable) and
gives exactly the logits of ``apply_thresholds`` in-process; its config names the sparse class in
``architectures`` beside the base ``model_type``, and its tokenizer and config load without remote code, with
no prompt (stdin closed) and no warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.cli import main
from sparsinglaw.errors import ConfigError
from sparsinglaw.export import CONFIG_KEY, export_sparse
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.thresholds import Thresholds, apply_thresholds

SRC = Path(__file__).resolve().parents[2] / "src"

# Runs with ``python -I``, without the repository's src on sys.path and with sparsinglaw's import blocked.
LOADER = textwrap.dedent("""
    import json, sys
    sys.path[:] = [p for p in sys.path if not p.startswith(sys.argv[1])]
    sys.modules["sparsinglaw"] = None  # blocked even where an editable install of another checkout is on the path
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    for job in json.loads(sys.argv[2]):
        ids = torch.load(job["ids"])
        out = {}
        if job.get("tokenizer"):  # the plain loads first: a prompt or warning would show on their own
            out["tokenizer"] = type(AutoTokenizer.from_pretrained(job["dir"])).__name__
        out["config"] = type(AutoConfig.from_pretrained(job["dir"])).__name__
        model = AutoModelForCausalLM.from_pretrained(job["dir"], trust_remote_code=True).eval()
        with torch.no_grad():
            out["sparse"] = model(input_ids=ids).logits
        out["class_True"] = type(model).__name__
        out["class_False"] = type(AutoModelForCausalLM.from_pretrained(job["dir"])).__name__
        torch.save(out, job["out"])
""")


def load_isolated(jobs, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "hf_modules"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-I", "-c", LOADER, str(SRC), json.dumps(jobs)], env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout + proc.stderr
    assert "[y/N]" not in printed and "trust_remote_code" not in printed, printed[-2000:]  # no remote-code prompt
    assert "model of type" not in printed, printed[-2000:]  # no config-type mismatch warning
    return [torch.load(job["out"]) for job in jobs]


def in_process(model, thresholds, ids):
    with torch.no_grad():
        dense = model(input_ids=ids).logits
        with apply_thresholds(model, thresholds):
            sparse = model(input_ids=ids).logits
    return dense, sparse


def tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=256, n_embd=64, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


def test_exported_llama_and_gpt2_match_apply_thresholds_without_sparsinglaw(tiny_dir, tiny_thresholds_file,
                                                                              tiny_lm, tiny_thresholds, tmp_path):
    model, _, _ = tiny_lm
    thresholds = tiny_thresholds[0]
    llama_dir = tmp_path / "llama_sparse"
    assert main(["export", "--model", str(tiny_dir), "--thresholds", str(tiny_thresholds_file),
                 "--out", str(llama_dir)]) == 0
    config = json.loads((llama_dir / "config.json").read_text())
    assert config["auto_map"] == {"AutoModelForCausalLM": "modeling_sparse.SparseLlamaForCausalLM"}
    assert (config["architectures"], config["model_type"]) == (["SparseLlamaForCausalLM"], "llama")
    assert [m["threshold"] for m in config[CONFIG_KEY]["modules"]] == thresholds.values
    assert Thresholds.load(llama_dir / "sparsity_thresholds.json").values == thresholds.values
    source = (llama_dir / "modeling_sparse.py").read_text()
    assert "import sparsinglaw" not in source and "from sparsinglaw" not in source

    gpt2 = tiny_gpt2()
    data = random_eval_data(n_sequences=4, seq_len=32)
    gpt2_thresholds = Thresholds.from_result(measure(gpt2, data, MeasureConfig(metric="cett", cett=0.2)), "gpt2")
    gpt2_dir = export_sparse(gpt2, None, gpt2_thresholds, tmp_path / "gpt2_sparse")

    ids = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))
    torch.save(ids, tmp_path / "ids.pt")
    jobs = [{"dir": str(d), "ids": str(tmp_path / "ids.pt"), "out": str(tmp_path / f"{d.name}.pt"),
             "tokenizer": d == llama_dir} for d in (llama_dir, gpt2_dir)]
    llama_out, gpt2_out = load_isolated(jobs, tmp_path)
    for out, (m, t) in zip((llama_out, gpt2_out), ((model, thresholds), (gpt2, gpt2_thresholds))):
        dense, sparse = in_process(m, t, ids)
        assert torch.equal(out["sparse"], sparse)
        assert (sparse - dense).abs().max() > 1e-4  # the thresholds do change the output
    assert llama_out["class_True"] == "SparseLlamaForCausalLM"
    assert gpt2_out["class_True"] == "SparseGPT2LMHeadModel"
    assert (llama_out["tokenizer"], llama_out["config"]) == ("TokenizersBackend", "LlamaConfig")
    # Documented: without remote code transformers builds its own (dense) class for the known model_type.
    assert (llama_out["class_False"], gpt2_out["class_False"]) == ("LlamaForCausalLM", "GPT2LMHeadModel")
    for module in model.modules():
        assert not module._forward_pre_hooks  # exporting does not touch the in-memory model


def test_export_refuses_a_non_empty_directory(tiny_thresholds, tmp_path):
    model = tiny_llama(vocab=256)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    thresholds = tiny_thresholds[0]
    with pytest.raises(ConfigError, match="not empty"):
        export_sparse(model, None, thresholds, tmp_path / "taken")
