"""The study, report and demo subcommands: dry run, one-line errors, --help."""

from __future__ import annotations

import json

import pytest

import sparsinglaw.cli as cli


@pytest.fixture(autouse=True)
def _subcommands(monkeypatch):
    extra = tuple(n for n in ("study", "report") if n not in cli.SUBCOMMANDS)
    monkeypatch.setattr(cli, "SUBCOMMANDS", (*cli.SUBCOMMANDS, *extra))


def test_study_dry_run_lists_the_cells(capsys, tmp_path):
    assert cli.main(["study", "demo", "--dry-run", f"out_dir={json.dumps(str(tmp_path))}"]) == 0
    out = capsys.readouterr().out
    cells = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(cells) == 2 and 'name = "demo"' in out
    assert "2 cells, 2,097,152 training tokens" in out and "h of training on cpu" in out
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_paper_preset_dry_run_prints_cells_tokens_and_time(capsys, tmp_path):
    assert cli.main(["study", "paper-0.1b", "--dry-run", f"out_dir={json.dumps(str(tmp_path))}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "base.data.source is not set" in err and "sparsinglaw data" in err
    assert cli.main(["study", "paper-0.1b", "--dry-run", f"out_dir={json.dumps(str(tmp_path))}",
                     "base.data.source='corpus.jsonl'"]) == 0
    out = capsys.readouterr().out
    cells = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(c["hidden_size"], c["num_layers"]) for c in cells] == [(768, 16), (768, 16)]
    assert "20,000,000,000 training tokens" in out and "on cuda" in out


def test_gpu_small_dry_run_on_shards_prints_their_size_and_the_named_accelerator(capsys, tmp_path):
    from sparsinglaw.data import builtin_documents
    from sparsinglaw.data.shard_writer import ShardSettings, write_shards

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": d[:1500]}) + "\n" for d in builtin_documents()[:30]))
    manifest = write_shards(ShardSettings(str(corpus), validation_fraction=0.2), tmp_path / "shards", vocab_size=300,
                            progress=False)
    args = ["study", "gpu-small", "--dry-run", f"base.data.source={json.dumps(str(tmp_path / 'shards'))}",
            "--device", "h100", f"out_dir={json.dumps(str(tmp_path / 'out'))}"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "4 cells, 800,000,000 training tokens" in out and "h of training on h100" in out
    train_tokens = manifest["totals"]["train_tokens"]
    assert f"# shards: {tmp_path / 'shards'}" in out and f"{train_tokens:,} training tokens" in out
    assert f"{200_000_000 / train_tokens:.2f} epochs" in out and " MiB on disk in 2 files" in out
    assert cli.main([*args, "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert est["shards"]["bytes"] == manifest["totals"]["bytes"] and est["device"] == "h100"
    assert not (tmp_path / "out").exists()
    from sparsinglaw.study import (
        load_study,  # cells on shards use the shards' tokenizer, not a study-trained one
    )

    cfg = load_study("gpu-small", [f"base.data.source={json.dumps(str(tmp_path / 'shards'))}"])
    assert cfg.cells()[0].train_config().tokenizer.path == str(tmp_path / "shards" / "tokenizer")


def test_user_errors_are_one_line(capsys, tmp_path):
    assert cli.main(["study", "demo", "launcher=slurm", "--dry-run"]) == 2
    assert cli.main(["study", str(tmp_path / "missing.toml")]) == 2
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "Traceback" not in err
    assert "launcher" in err and "no fits.json" in err and "sparsinglaw report" in err and "--analyze" in err
    assert cli.main(["report", str(tmp_path), "--analyze"]) == 2  # nothing to analyze either
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "neither a study directory nor a measured training run" in err


def test_report_cli_on_a_study(mini_study, capsys, tmp_path):
    cfg, _ = mini_study
    assert cli.main(["report", cfg.out_dir, "--out", str(tmp_path / "r")]) == 0
    assert f"report: {tmp_path / 'r' / 'index.html'}" in capsys.readouterr().out
    assert len(list((tmp_path / "r").glob("*.png"))) == 5 and len(list((tmp_path / "r").glob("*.csv"))) == 5
