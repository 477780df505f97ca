"""The training commands end to end on tiny presets."""
from __future__ import annotations

import json
import re

import pytest

from app.cli import build_parser, main
from embedder import PromptEmbedder


pytestmark = pytest.mark.usefixtures("one_thread")


def toy_jsonl(path, n: int = 24):
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": "Find the match.", "query": f"query number {i}",
                                "positive": f"document number {i}", "negatives": [f"other {i}"]}) + "\n")
    return path


@pytest.mark.parametrize("command", ["train", "train-lora", "align", "prepare-data", "dev-score"])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    assert ("--dev" if command == "dev-score" else "--data") in text and "--output" in text
    if command not in ("prepare-data", "dev-score"):
        assert "--max-steps" in text and "--resume" in text


def test_train_align_and_resume_from_the_cli(tmp_path, capsys):
    data = toy_jsonl(tmp_path / "toy.jsonl")
    common = ["--data", str(data), "--batch-size", "4", "--query-length", "8", "--document-length", "8",
              "--no-progress", "--device", "cpu"]
    run = tmp_path / "pe"
    assert main(["train", *common, "--backbone", "tiny-llama", "--max-steps", "4", "--save-every", "2",
                 "-o", str(run)]) == 0
    assert (run / "config.json").exists() and (run / "checkpoint-000002").is_dir()
    assert main(["train", *common, "--backbone", "tiny-llama", "--max-steps", "4", "-o", str(run)]) == 2
    assert "already holds a training run" in capsys.readouterr().err
    # resume continues from the latest checkpoint with the saved settings
    assert main(["train", *common, "--resume", "-o", str(run)]) == 0
    capsys.readouterr()
    assert main(["align", *common, "--model", str(run), "--backbone", "tiny-qwen2", "--max-steps", "2",
                 "-o", str(tmp_path / "aligned")]) == 0
    config = json.loads((tmp_path / "aligned" / "config.json").read_text())
    assert sorted(config["aligned_backbones"]) == ["tiny-llama", "tiny-qwen2"]
    # what the command says trains is what trained: the new alignment alone, not P's adapters too
    aligned = PromptEmbedder.from_pretrained(tmp_path / "aligned", backbone="tiny-qwen2")
    said = re.search(r"([\d,]+) trainable parameters", capsys.readouterr().err).group(1)
    assert int(said.replace(",", "")) == sum(p.numel() for p in aligned.alignment.parameters())
    assert main(["train-lora", *common, "--backbone", "tiny-llama", "--lora-rank", "4", "--max-steps", "2",
                 "-o", str(tmp_path / "lora")]) == 0
    capsys.readouterr()
    assert main(["encode", "--model", str(tmp_path / "lora"), "hello"]) == 0
    assert json.loads(capsys.readouterr().out)["dimension"] == 32


def test_train_init_from_continues_a_trained_model(tmp_path, capsys):
    from embedder.checkpoint import trained_state

    data = toy_jsonl(tmp_path / "toy.jsonl")
    common = ["--data", str(data), "--batch-size", "4", "--query-length", "8", "--document-length", "8",
              "--no-progress", "--device", "cpu", "--max-steps", "2", "--save-every", "0"]
    first = tmp_path / "first"
    assert main(["train", *common, "--backbone", "tiny-llama", "--deep-rank", "2", "-o", str(first)]) == 0
    trainable = re.search(r"([\d,]+) trainable parameters", capsys.readouterr().err).group(1)
    # a model option that contradicts the model is refused, not ignored, even when it is the fresh default
    for option in (["--deep-rank", "0"], ["--deep-rank", "4"], ["--prompter-lora-rank", "8"], ["--pooling", "mean"]):
        assert main(["train", *common, "--init-from", str(first), *option, "-o", str(tmp_path / "x")]) == 2
        assert f"leave out {option[0]} " in capsys.readouterr().err
    assert main(["train", *common, "--init-from", "tiny", "-o", str(tmp_path / "x")]) == 2
    assert "not a trained model directory" in capsys.readouterr().err
    assert main(["train", *common, "--init-from", str(first), "--lr", "1e-9", "--alignment-lr", "1e-9",
                 "-o", str(tmp_path / "second")]) == 0
    # the same weights train as in a fresh run
    assert re.search(r"([\d,]+) trainable parameters", capsys.readouterr().err).group(1) == trainable
    args = json.loads((tmp_path / "second" / "training_args.json").read_text())
    assert args["init_from"].startswith(str(first)) and "fingerprint" in args["init_from"]
    assert args["tau_start"] == args["tau_end"] == PromptEmbedder.from_pretrained(first).config.gumbel_tau
    # the run started from the first model's weights (a learning rate of 1e-9 barely moves them), deep alignment
    # included; fresh adapters would be far from them
    before = trained_state(PromptEmbedder.from_pretrained(first))
    after = trained_state(PromptEmbedder.from_pretrained(tmp_path / "second"))
    assert before.keys() == after.keys()
    for group in before:
        for key, tensor in before[group].items():
            assert (after[group][key] - tensor).abs().max() < 1e-5, (group, key)
    assert any("deep" in key for key in before["alignment-tiny-llama"])


def test_dev_score_reproduces_the_dev_score_the_trainer_logged(tmp_path, capsys):
    data, dev = toy_jsonl(tmp_path / "toy.jsonl"), toy_jsonl(tmp_path / "dev.jsonl", n=8)
    run = tmp_path / "pe"
    assert main(["train", "--data", str(data), "--dev", str(dev), "--batch-size", "4", "--query-length", "8",
                 "--document-length", "8", "--no-progress", "--device", "cpu", "--max-steps", "2",
                 "--eval-every", "2", "--save-every", "0", "--backbone", "tiny-llama", "-o", str(run)]) == 0
    logged = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()][-1]
    out = tmp_path / "dev.json"
    assert main(["dev-score", "--model", str(run), "--dev", str(dev), "--document-length", "8", "--device", "cpu",
                 "--output", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["dev/score"] == pytest.approx(logged["dev/score"], abs=1e-5)  # the log keeps 5 decimals
    assert "dev/score" in capsys.readouterr().out
    assert main(["dev-score", "--model", str(tmp_path / "nowhere"), "--dev", str(dev)]) == 2
    assert "error:" in capsys.readouterr().err


def test_malformed_data_is_an_error_naming_file_and_line(tmp_path, capsys):
    data = toy_jsonl(tmp_path / "toy.jsonl")
    with data.open("a") as f:
        f.write('{"query": "x", "positive": 5}\n')
    args = ["train", "--data", str(data), "--backbone", "tiny-llama", "--batch-size", "4", "--max-steps", "1",
            "--no-progress", "-o", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{data}:25:" in err and "'positive'" in err
    assert not (tmp_path / "run").exists()
    assert main([*args, "--on-error", "skip"]) == 0
    assert f"skipped: {data}:25:" in capsys.readouterr().err
