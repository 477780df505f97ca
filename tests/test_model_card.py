"""`promptembedder model-card` and the results table, on the tiny stand-in for the shipped model."""
from __future__ import annotations

import json

import pytest

from app.cli import main
from embedder import PromptEmbedder, PromptEmbedderConfig
from training.errors import TrainingError
from training.model_card import model_card, results_table

RESULTS = {"results": [
    {"model": "bm25", "dataset": "scifact", "split": "test", "metric": "ndcg_at_10", "value": 0.66169, "device": "cpu"},
    {"model": "default", "dataset": "scifact", "split": "test", "metric": "ndcg_at_10", "value": 0.51234,
     "device": "cuda"},
    {"model": "default", "dataset": "stsbenchmark", "split": "test", "metric": "spearman", "value": 0.7349,
     "device": "cuda"},
    {"model": "bm25", "dataset": "scifact", "split": "dev", "metric": "ndcg_at_10", "value": 0.9, "device": "cpu"},
]}


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "eval-default.json"
    path.write_text(json.dumps(RESULTS))
    return path


@pytest.fixture
def run(tmp_path):
    """A run directory as the trainer leaves it: its settings, its log (two steps, one dev evaluation)."""
    folder = tmp_path / "runs" / "pe"
    folder.mkdir(parents=True)
    (folder / "training_args.json").write_text(json.dumps({"mode": "prompter", "max_steps": 2, "batch_size": 64,
                                                           "lr": 0.0001, "seed": 0}))
    log = [{"step": 1, "loss": 3.0, "step_s": 70.0, "peak_memory_bytes": 3 * 2**30},
           {"step": 2, "loss": 2.0, "step_s": 80.0, "peak_memory_bytes": 6 * 2**30, "dev/score": 0.4321}]
    (folder / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    return folder


def test_results_table_has_a_row_per_model_and_na_where_not_measured():
    table = results_table(RESULTS["results"])
    lines = table.splitlines()
    assert lines[0] == "| model | SciFact nDCG@10 | STS-B Spearman | device |"
    assert lines[2] == "| bm25 | 0.662 | n/a | cpu |"  # its dev-split row is not a test score
    assert lines[3] == "| default | 0.512 | 0.735 | cuda |"
    assert len(lines) == 4


def test_model_card_from_the_checkpoint_runs_and_results(shipped_model, results, run, tmp_path):
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"sources": ["qa:medquad.jsonl"], "train_records": 7, "dev_records": 1,
                                   "tasks": {"qa:medquad": 7}}))
    assert main(["model-card", "--model", str(shipped_model), "--results", str(results), "--run", f"pe={run}",
                 "--hardware", "1x NVIDIA H100 80GB", "--data-summary", str(summary),
                 "-o", str(tmp_path / "README.md")]) == 0
    card = (tmp_path / "README.md").read_text()
    assert "PromptEmbedder.from_pretrained()" in card  # the shipped model loads without a name
    assert "| Embedding LLM (default on CUDA) | tiny-qwen2 |" in card
    assert "| Embedding LLM (default on CPU) | tiny-llama |" in card
    assert "| Prompting LLM (weights: base) | tiny-llama |" in card
    assert "| pe | 1x NVIDIA H100 80GB | 2 | 2.5 min | 75.0 s | 6.00 GiB | 0.432 |" in card  # median of 70, 80
    assert "| batch_size | 64 |" in card and "| num_soft_tokens | 5 |" in card
    assert "| default | 0.512 | 0.735 | cuda |" in card and "| bm25 | 0.662 | n/a | cpu |" in card
    assert "MedQuAD" in card and "CC BY-NC-SA 3.0" in card  # the data, and what was left out
    assert "| qa:medquad | 7 |" in card


def test_model_card_needs_the_hardware_when_the_logs_record_none(tiny_default_checkpoint, results, run):
    with pytest.raises(TrainingError, match="--hardware"):
        model_card(tiny_default_checkpoint, results, {"pe": run})
    with open(run / "training_args.json", "w") as f:
        json.dump({"mode": "prompter", "device": "cuda"}, f)
    card = model_card(tiny_default_checkpoint, results, {"pe": run})
    assert '| pe | cuda | 2 |' in card
    assert f'from_pretrained("{tiny_default_checkpoint}")' in card  # not the shipped one: loaded by path


def test_model_card_names_the_embedding_llm_the_default_everywhere_without_a_cpu_backbone(results, run, tmp_path):
    folder = tmp_path / "one-backbone"
    PromptEmbedder.from_config(PromptEmbedderConfig(embedding_backbone="tiny-llama")).save_pretrained(folder)
    card = model_card(folder, results, {"pe": run}, hardware="cpu")
    assert "| Embedding LLM (default) | tiny-llama |" in card and "default on CUDA" not in card


def test_model_card_refuses_a_missing_or_malformed_results_file(tiny_default_checkpoint, tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["model-card", "--model", str(tiny_default_checkpoint), "--results", str(missing),
                 "--hardware", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"results file {missing} not found" in err and "--record" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": [{"model": "x", "dataset": "scifact"}]}))
    assert main(["model-card", "--model", str(tiny_default_checkpoint), "--results", str(bad),
                 "--hardware", "cpu"]) == 2
    assert "results[0] lacks split, metric, value" in capsys.readouterr().err
    assert not (tiny_default_checkpoint / "README.md").exists()


def test_model_card_marks_the_settings_an_alignment_run_does_not_apply(tiny_default_checkpoint, results, run, tmp_path):
    aligned = tmp_path / "runs" / "align"
    aligned.mkdir()
    (aligned / "train_log.jsonl").write_text((run / "train_log.jsonl").read_text())
    (aligned / "training_args.json").write_text(json.dumps({"mode": "alignment", "lr": 0.002, "alignment_lr": 0.002,
                                                             "tau_start": 1.0, "tau_end": 0.3}))
    (run / "training_args.json").write_text(json.dumps({"mode": "prompter", "lr": 0.0002, "tau_start": 1.0}))
    card = model_card(tiny_default_checkpoint, results, {"pe": run, "align": aligned}, hardware="cpu")
    assert "| lr | 0.0002 | unused (alignment) |" in card  # P is frozen: its learning rate does not apply
    assert "| tau_start | 1.0 | unused (alignment) |" in card  # nor the anneal: P keeps its checkpoint's tau
    assert "| alignment_lr | n/a | 0.002 |" in card
