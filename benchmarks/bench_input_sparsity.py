"""Input sparsity of every projection on SmolLM2-135M: side by side with output sparsity, and decode speed.

    .venv/bin/python benchmarks/bench_input_sparsity.py                      # SmolLM2, the whole run
    .venv/bin/python benchmarks/bench_input_sparsity.py --tiny               # tiny random Llama (smoke test)

One run, three parts (``--parts``):

* ``side``: at PPL-p% for each ``--p`` on ``--tokens`` tokens of built-in English text: output-only
  (``measure``, FFN neurons), input-only (``measure_inputs``: ours, TEAL-uniform, TEAL-greedy) and combined
  (output at PPL-(p/2)% with ours at PPL-(p/2)%, the budget split). Each is then evaluated the same way on
  the same tokens: the PPL ratio, the weight bytes a batch-1 decode step reads (input kinds: kept
  (token, input) pairs per projection counted by ``sparse.input_sparse``'s modules; output-only: the FFN's
  gate in full, up rows and down columns of the kept neurons, the ideal exact-selection kernel) and the
  local lm-eval task (``sl_local_mc`` of tests/evaluation/conftest.py, ``--task-docs`` items, offline).
* ``decode``: greedy decode of held-out text at batch 1 and 4: dense, PPL-1% input (ours) and PPL-1%
  combined thresholds on the input-sparse CPU path, and llama.cpp's dense decode of the same GGUF at the
  same threads (``--llama-python``: a Python with llama-cpp-python, a separate venv, never a dependency of
  this package), interleaved over ``--repeats`` rounds (medians; ratios are of this run). Bytes per step are
  counted from the columns the modules read; the bound is dense bytes over those. Also a breakdown of our
  dense step: projections, output head, and the rest (attention math, norms, Python per layer).
* ``micro``: per projection of the middle block, dense and input-sparse microseconds on real decode inputs
  at batch 1 and 4.

Float32 weights (4 bytes each), ``--threads`` threads for PyTorch (the kernel is single-threaded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from common import GGUF, english, smollm2  # noqa: E402

from sparsinglaw.capture.passes import run_pass  # noqa: E402
from sparsinglaw.data import build_eval_data, builtin_documents  # noqa: E402
from sparsinglaw.inputs import InputConfig, measure_inputs  # noqa: E402
from sparsinglaw.measure import MeasureConfig, measure  # noqa: E402
from sparsinglaw.models.projections import find_projections, observe_outputs  # noqa: E402
from sparsinglaw.sparse import SparsePolicy  # noqa: E402
from sparsinglaw.sparse.input_sparse import InputSparseLinear, sparsify_inputs  # noqa: E402
from sparsinglaw.sparse.speed import greedy_decode, other_weights  # noqa: E402
from sparsinglaw.thresholds import CombinedThresholds, InputThresholds, Thresholds, apply_thresholds  # noqa: E402

BYTES = 4.0  # float32
INPUT_METHODS = ("cett", "teal-uniform", "teal-greedy")
LABELS = {"cett": "input: ours", "teal-uniform": "input: TEAL-uniform", "teal-greedy": "input: TEAL-greedy"}


def tiny():
    from helpers import text_tokenizer, tiny_llama

    tokenizer = text_tokenizer()
    return tiny_llama(layers=4, hidden=128, inter=320, vocab=len(tokenizer)), tokenizer


# ---- side by side -------------------------------------------------------------------------------------------

def calibrate(model, data, p: float, name: str, methods: tuple[str, ...] = INPUT_METHODS) -> dict:
    """Thresholds of every configuration at PPL-p%: output (with all methods), the input methods, combined."""
    out = {}
    if methods == INPUT_METHODS:
        result = measure(model, data, MeasureConfig(metric="pplp", p=p, level=0.0), model_name=name)
        out["output"] = Thresholds.from_result(result, "llama")
    config = InputConfig(p=p, methods=methods, batch_size=8, greedy_step=0.05, greedy_sequences=4)
    inputs = measure_inputs(model, data, config, model_name=name)
    for m in inputs.methods:
        out[m.method] = InputThresholds.from_method(inputs, m)
    half = measure(model, data, MeasureConfig(metric="pplp", p=p / 2, level=0.0), model_name=name)
    half_inputs = measure_inputs(model, data, InputConfig(p=p / 2, methods=("cett",), batch_size=8), model_name=name)
    out["combined"] = CombinedThresholds(Thresholds.from_result(half, "llama"),
                                         InputThresholds.from_method(half_inputs, half_inputs.methods[0]))
    return out


def dense_weight_bytes(model) -> tuple[float, float]:
    """(all weights a dense decode step reads, those outside the seven projections), in bytes."""
    from sparsinglaw.inputs.measure import other_weight_count

    projections = find_projections(model)
    other = other_weight_count(model, projections)
    return (sum(p.parameters for p in projections) + other) * BYTES, other * BYTES


def output_bytes(model, ratios: list[float], other: float) -> float:
    """Output-only sparsity, ideal kernel: attention and gate in full, up rows and down columns of kept neurons."""
    total = other
    for p in find_projections(model):
        share = ratios[p.block] if p.kind in ("up", "down") else 1.0
        total += share * p.parameters * BYTES
    return total


def evaluate_config(model, data, thresholds, dense_nll: float, other: float) -> dict:
    """PPL ratio and weight bytes per decode step of one configuration, on ``data``."""
    import math

    if isinstance(thresholds, Thresholds):
        with apply_thresholds(model, thresholds) as stats:
            nll = run_pass(model, data, 8).mean_nll
        ratios = (stats.active / stats.total).tolist()
        return {"ppl_ratio": math.exp(nll - dense_nll), "bytes": output_bytes(model, ratios, other),
                "kept": float(stats.activation_ratio)}
    handle = sparsify_inputs(model, thresholds)  # evaluation sequences take the (exact) masked dense product
    try:
        nll = run_pass(model, data, 8).mean_nll
    finally:
        handle.restore()
    read = sum(m.counters.kept_pairs / m.counters.offered_pairs * m.in_features * m.out_features
               for m in handle.modules.values()) * BYTES
    return {"ppl_ratio": math.exp(nll - dense_nll), "bytes": read + other, "kept": handle.pair_share()}


def task_scores(model, tokenizer, thresholds, task_dir: Path, cache: Path) -> tuple[float, float, float]:
    """(dense acc, sparse acc, sparse acc_norm) on the local multiple-choice task."""
    from evaluation.conftest import TASK
    from sparsinglaw.evaluate import evaluate_dense_and_sparse

    report = evaluate_dense_and_sparse(model, tokenizer, thresholds, [TASK], include_path=[str(task_dir)],
                                       batch_size=1, bootstrap_iters=0, use_cache=str(cache))
    rows = {r.metric: r for r in report.rows}
    return rows["acc"].dense, rows["acc"].sparse, rows["acc_norm"].sparse


def side_by_side(model, tokenizer, data, args, name: str, workdir: Path) -> tuple[list[dict], dict]:
    import datasets.config

    from sparsinglaw.data.mc_task import write_mc_task

    datasets.config.HF_DATASETS_CACHE = workdir / "hf_datasets"
    task_dir = write_mc_task(workdir / "tasks", n=args.task_docs, seed=1)
    dense_nll = run_pass(model, data, 8).mean_nll
    dense_bytes, other = dense_weight_bytes(model)
    rows, kept_thresholds = [], {}
    for p in args.p:
        started = time.perf_counter()
        configs = saved_configs(args.thresholds_dir) if p == 1.0 and args.reuse_thresholds else None
        if configs is None:
            configs = calibrate(model, data, p, name)
            if p == 1.0 and args.thresholds_dir:  # decode and micro read them (a later run with --parts decode,micro)
                save_thresholds(configs, Path(args.thresholds_dir))
        print(f"PPL-{p:g}%: thresholds of {len(configs)} configurations in {time.perf_counter() - started:.0f} s",
              flush=True)
        kept_thresholds[p] = configs
        for key, thresholds in configs.items():
            row = evaluate_config(model, data, thresholds, dense_nll, other)
            dense_acc, acc, acc_norm = task_scores(model, tokenizer, thresholds, task_dir, workdir / "lm_cache")
            rows.append({"p": p, "config": LABELS.get(key, key), "ppl_ratio": row["ppl_ratio"],
                         "mb_per_token": row["bytes"] / 1e6, "bytes_ratio": row["bytes"] / dense_bytes,
                         "kept": row["kept"], "acc": acc, "acc_norm": acc_norm, "dense_acc": dense_acc})
            print_side_row(rows[-1])
    return rows, kept_thresholds


def print_side_row(r: dict) -> None:
    print(f"  p={r['p']:<4g} {r['config']:<22} PPL ratio {r['ppl_ratio']:.4f}  {r['mb_per_token']:7.1f} MB/token "
          f"({r['bytes_ratio']:.3f} of dense)  kept {r['kept']:.3f}  acc {r['acc']:.3f} (dense {r['dense_acc']:.3f}) "
          f"acc_norm {r['acc_norm']:.3f}", flush=True)


# ---- decode -------------------------------------------------------------------------------------------------

LLAMA_SERVER = r"""
import json, sys, time
import numpy as np
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_threads=int(sys.argv[2]), n_threads_batch=int(sys.argv[2]), n_ctx=512,
            verbose=False)
print("ready", flush=True)
for line in sys.stdin:
    prompt, new_tokens = json.loads(line)
    llm.reset()
    llm.eval(prompt)
    token, seconds = int(np.argmax(llm.scores[llm.n_tokens - 1])), 0.0
    for _ in range(new_tokens - 1):
        start = time.perf_counter()
        llm.eval([token])
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        seconds += time.perf_counter() - start
    print(json.dumps((new_tokens - 1) / seconds), flush=True)
"""


class LlamaCpp:
    """llama.cpp's dense decode of the GGUF in a separate Python (llama-cpp-python), one process for the run."""

    def __init__(self, python: str, gguf: Path, threads: int, wait_s: float = 0.0):
        deadline = time.time() + wait_s  # the package may still be compiling (a 6+ minute build)
        while subprocess.run([python, "-c", "import llama_cpp"], capture_output=True).returncode != 0:
            if time.time() > deadline:
                raise RuntimeError(f"{python} cannot import llama_cpp: pip install llama-cpp-python there")
            time.sleep(30)
        self.proc = subprocess.Popen([python, "-c", LLAMA_SERVER, str(gguf), str(threads)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("llama-cpp-python did not start")

    def tokens_per_s(self, prompt: list[int], new_tokens: int) -> float:
        self.proc.stdin.write(json.dumps([prompt, new_tokens]) + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def dense_step_breakdown(model, prompt, steps: int = 16) -> dict:
    """ms of one dense batch-1 decode step: all of it, the seven projections, the output head, the rest."""
    projections = find_projections(model)
    inputs = {p.index: [] for p in projections}
    with observe_outputs(projections, lambda p, x, y: inputs[p.index].append(x.clone())):
        greedy_decode(model, prompt, steps + 1)
    _, seconds = greedy_decode(model, prompt, steps + 1)
    head = model.get_output_embeddings()
    hidden = torch.randn(1, 1, head.in_features)
    with torch.inference_mode():
        proj = sum(statistics.median(_times(p.module, inputs[p.index][1:])) for p in projections)
        head_s = statistics.median(_times(head, [hidden] * 8))
    step = seconds / steps
    return {"step_ms": step * 1e3, "projections_ms": proj * 1e3, "head_ms": head_s * 1e3,
            "rest_ms": (step - proj - head_s) * 1e3}


def _times(fn, xs) -> list[float]:
    out = []
    for x in xs:
        start = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - start)
    return out


def decode_prompts(tokenizer) -> torch.Tensor:
    """Four held-out prompts of 32 tokens (the last built-in documents; calibration reads the first)."""
    return build_eval_data(tokenizer, builtin_documents()[-20:], seq_len=32, max_tokens=32 * 4).input_ids[:4]


def decode_benchmark(model, tokenizer, configs: dict, args, dense_bytes: float) -> list[dict]:
    """Interleaved rounds: dense, each configuration on the input-sparse path, llama.cpp (batch 1)."""
    prompts = decode_prompts(tokenizer)
    handles = {}
    for key, thresholds in configs.items():  # built once; swapped in and out around each decode
        handles[key] = sparsify_inputs(model, thresholds, policy=SparsePolicy(max_share=args.max_share))
        handles[key].set_enabled(False)
    other = other_weights(model, next(iter(handles.values()))) * BYTES
    llama = None
    if args.llama_python:
        try:
            llama = LlamaCpp(args.llama_python, GGUF, args.threads, args.llama_wait)
        except RuntimeError as err:  # the rows of our path still come
            print(f"  no llama.cpp rows: {err}", flush=True)
    rows = []
    try:
        greedy_decode(model, prompts[:1], 3)
        for batch in (1, 4):
            prompt = prompts[:batch]
            speeds = {k: [] for k in ["dense", *handles, *(["llama.cpp"] if llama and batch == 1 else [])]}
            read = {}
            for _ in range(args.repeats):
                speeds["dense"].append(_decode_tps(model, prompt, args.new_tokens))
                for key, handle in handles.items():
                    handle.set_enabled(True)
                    speeds[key].append(_decode_tps(model, prompt, args.new_tokens, handle.reset_counters))
                    read[key] = (handle.weight_bytes_read(BYTES) / (args.new_tokens - 1), handle.pair_share(),
                                 1 - handle.dense_share())
                    handle.set_enabled(False)
                if "llama.cpp" in speeds:
                    speeds["llama.cpp"].append(llama.tokens_per_s(prompt[0].tolist(), args.new_tokens))
            dense_tps = statistics.median(speeds["dense"])
            for key, values in speeds.items():
                tps = statistics.median(values)
                row = {"batch": batch, "config": key, "tokens_per_s": tps, "ratio": tps / dense_tps, "runs": values}
                if key in read:
                    used, kept, sparse_share = read[key]
                    bound = dense_bytes / (used + other)
                    row.update(mb_per_token=(used + other) / 1e6, bound=bound, of_bound=tps / dense_tps / bound,
                               kept=kept, sparse_share=sparse_share)
                rows.append(row)
                print_decode_row(row)
    finally:
        for handle in handles.values():
            handle.restore()
        if llama:
            llama.close()
    return rows


def _decode_tps(model, prompt, new_tokens, after_prefill=None) -> float:
    _, seconds = greedy_decode(model, prompt, new_tokens, after_prefill=after_prefill)
    return prompt.shape[0] * (new_tokens - 1) / seconds


def print_decode_row(r: dict) -> None:
    extra = (f"  {r['mb_per_token']:6.1f} MB/step  bound {r['bound']:.2f}x  of bound {r['of_bound']:.2f}  kept "
             f"{r['kept']:.2f}  sparse calls {r['sparse_share']:.2f}") if "bound" in r else ""
    print(f"  batch {r['batch']} {r['config']:<10} {r['tokens_per_s']:7.1f} tok/s  x{r['ratio']:.2f}{extra}", flush=True)


# ---- micro --------------------------------------------------------------------------------------------------

def microbenchmark(model, thresholds: InputThresholds, prompts, block: int, repeats: int = 200) -> list[dict]:
    """Per projection of ``block``, batch 1 and 4: dense and input-sparse microseconds on real decode inputs."""
    projections = [p for p in find_projections(model) if p.block == block]
    rows = {r["name"]: r for r in thresholds.projections}
    out = []
    for batch in (1, 4):
        inputs = {p.index: [] for p in projections}
        with observe_outputs(projections, lambda p, x, y, inputs=inputs: inputs[p.index].append(x.reshape(-1, x.shape[-1]).clone())):
            greedy_decode(model, prompts[:batch], 17)
        for p in projections:
            xs = [x for x in inputs[p.index] if x.shape[0] == batch][:16]
            norms = p.down_column_norms() if thresholds.weighted else None
            sparse = InputSparseLinear(p.module, rows[p.name]["threshold"], norms, policy=SparsePolicy(max_share=1.0))
            times = {}
            with torch.inference_mode():
                for name, f in (("dense", p.module), ("sparse", sparse)):
                    for x in xs:
                        f(x)
                    runs = [sum(_times(f, xs)) / len(xs) for _ in range(max(repeats // len(xs), 1))]
                    times[name] = statistics.median(runs) * 1e6
            kept = sparse.counters.kept_inputs / max(sparse.counters.sparse_calls, 1) / p.in_features
            out.append({"batch": batch, "projection": p.kind, "shape": f"{p.out_features}x{p.in_features}",
                        "read": kept, "dense_us": times["dense"], "sparse_us": times["sparse"],
                        "speedup": times["dense"] / times["sparse"], "bound": 1 / kept if kept > 0 else float("inf")})
            r = out[-1]
            print(f"  batch {batch} {r['projection']:<5} {r['shape']:>9} read {r['read']:.2f}  dense "
                  f"{r['dense_us']:7.1f} us  sparse {r['sparse_us']:7.1f} us  x{r['speedup']:.2f} (bound "
                  f"{r['bound']:.2f})", flush=True)
    return out


def thresholds_at_1(model, data, name: str, configs: dict, directory: str | None) -> dict:
    """The PPL-1% thresholds (ours and combined) for decode and micro: from this run's side part (and
    saved to ``directory``), else read from ``directory``, else calibrated now."""
    chosen = configs.get(1.0)
    if chosen is None and (saved := saved_configs(directory, ("cett", "combined"))) is not None:
        return saved
    chosen = chosen or calibrate(model, data, 1.0, name, methods=("cett",))  # decode needs ours and combined
    if directory:
        save_thresholds(chosen, Path(directory))
    return chosen


CONFIG_KEYS = ("output", *INPUT_METHODS, "combined")


def saved_configs(directory: str | None, keys: tuple[str, ...] = CONFIG_KEYS) -> dict | None:
    """The PPL-1% thresholds of ``keys`` from an earlier run's ``--thresholds-dir``; None if any is missing
    (calibrated on that run's ``--tokens``: the files' ``calibration`` records say on which)."""
    from sparsinglaw.thresholds import load_thresholds

    folder = Path(directory) if directory else None
    if folder is None or not all((folder / f"{key}.json").is_file() for key in keys):
        return None
    print(f"PPL-1%: thresholds of {', '.join(keys)} read from {folder}", flush=True)
    return {key: load_thresholds(folder / f"{key}.json") for key in keys}


def save_thresholds(configs: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for key, thresholds in configs.items():
        thresholds.save(folder / f"{key}.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="a tiny random Llama instead of SmolLM2 (smoke test)")
    ap.add_argument("--parts", default="side,decode,micro")
    ap.add_argument("--tokens", type=int, default=2048, help="calibration and PPL tokens")
    ap.add_argument("--p", type=float, nargs="+", default=[1.0, 5.0])
    ap.add_argument("--task-docs", type=int, default=200, help="items of the local lm-eval task")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-share", type=float, default=0.8, help="dense fallback above this kept share")
    ap.add_argument("--llama-python", help="a Python with llama-cpp-python (e.g. /work/bench-venv/bin/python)")
    ap.add_argument("--llama-wait", type=float, default=0.0, help="seconds to wait for llama_cpp to import")
    ap.add_argument("--thresholds-dir", help="save the PPL-1%% thresholds files here (read back when --parts has no side)")
    ap.add_argument("--reuse-thresholds", action="store_true",
                    help="side: evaluate the PPL-1%% thresholds saved in --thresholds-dir instead of calibrating")
    ap.add_argument("--output", help="write every number as JSON here")
    args = ap.parse_args()
    parts = set(args.parts.split(","))

    torch.set_num_threads(args.threads)
    model, tokenizer = tiny() if args.tiny else smollm2(args.threads)
    name = "tiny random Llama" if args.tiny else "SmolLM2-135M-Instruct"
    data = english(tokenizer, args.tokens, seq_len=128 if not args.tiny else 64)
    doc: dict = {"model": name, "threads": args.threads, "tokens": int(data.input_ids.numel()),
                 "loaded": "cores shared with a background job: timings are loaded"}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{name}: side by side at PPL-p% on {doc['tokens']} tokens", flush=True)
        rows, configs = side_by_side(model, tokenizer, data, args, name, Path(tmp)) if "side" in parts else ([], {})
        doc["side_by_side"] = rows
    if not parts & {"decode", "micro"}:
        return _write(doc, args.output)
    chosen = thresholds_at_1(model, data, name, configs, args.thresholds_dir)
    dense_bytes, _ = dense_weight_bytes(model)
    prompts = decode_prompts(tokenizer)
    if "micro" in parts:
        block = len(model.model.layers) // 2
        print(f"per-projection microbenchmark, block {block}, PPL-1% ours (input)")
        doc["micro"] = microbenchmark(model, chosen["cett"], prompts, block)
    if "decode" in parts:
        print(f"decode, {args.threads} thread(s), medians of {args.repeats} interleaved rounds (loaded machine)")
        doc["breakdown"] = dense_step_breakdown(model, prompts[:1])
        print("  dense step: " + ", ".join(f"{k} {v:.2f}" for k, v in doc["breakdown"].items()), flush=True)
        doc["decode"] = decode_benchmark(model, tokenizer, {"input": chosen["cett"], "combined": chosen["combined"]},
                                         args, dense_bytes)
    _write(doc, args.output)


def _write(doc: dict, output: str | None) -> None:
    if output:
        Path(output).write_text(json.dumps(doc, indent=2, default=float))


if __name__ == "__main__":
    main()
