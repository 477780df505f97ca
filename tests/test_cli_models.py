"""`promptembedder models`, `prepare` and `encode`, run as a user would."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from app.cli import main
from embedder import PromptEmbedder


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=300)


def test_models_lists_real_backbones_and_tiny_presets(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["backbones"]}
    assert {"smollm2-135m", "qwen2.5-0.5b", "gemma3-270m", "tiny-llama", "tiny-qwen2", "tiny-gemma3"} <= set(rows)
    assert rows["tiny-gemma3"]["status"] == "ready"
    assert rows["qwen2.5-0.5b"]["hidden"] == 896


def test_a_missing_cache_and_a_corrupt_cache_say_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROMPTEMBEDDER_CACHE", str(tmp_path / "cache"))
    assert main(["encode", "--model", "raw:smollm2-135m", "hello"]) == 2
    err = capsys.readouterr().err
    assert "not ready" in err and "promptembedder prepare smollm2-135m" in err
    (tmp_path / "cache" / "smollm2-135m").mkdir(parents=True)
    (tmp_path / "cache" / "smollm2-135m" / "promptembedder-ready.json").write_text('{"files": {"x": 1}}')
    assert main(["encode", "--model", "raw:smollm2-135m", "hello"]) == 2
    assert "corrupt cache" in capsys.readouterr().err


def test_models_shows_the_default_model_or_that_none_is_shipped(tiny_default_checkpoint, monkeypatch, capsys):
    import torch

    monkeypatch.setattr("embedder.checkpoint.DEFAULT_MODEL_DIR", tiny_default_checkpoint.parent / "absent")
    assert main(["models"]) == 0
    assert "default model: none shipped" in capsys.readouterr().out
    monkeypatch.setattr("embedder.checkpoint.DEFAULT_MODEL_DIR", tiny_default_checkpoint)
    assert main(["models", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)["default_model"]
    assert default["path"] == str(tiny_default_checkpoint)
    assert default["aligned_backbones"] == ["tiny-llama", "tiny-qwen2"]
    assert default["backbone"] == ("tiny-qwen2" if torch.cuda.is_available() else "tiny-llama")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "runs on tiny-qwen2 on CUDA, tiny-llama on the CPU" in out


def test_commands_without_a_model_use_the_shipped_one(shipped_model, capsys):
    assert main(["encode", "--device", "cpu", "hello"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    expected = PromptEmbedder.from_pretrained(shipped_model, backbone="tiny-llama", device="cpu")
    assert payload["model"] == "default" and payload["fingerprint"] == expected.fingerprint
    assert "No trained model is shipped" not in captured.err
    assert main(["encode", "--model", "default", "--device", "cpu", "--backbone", "tiny-qwen2", "hello"]) == 0
    assert json.loads(capsys.readouterr().out)["dimension"] == 48


def test_commands_without_a_model_fall_back_with_a_note_while_none_is_shipped(no_shipped_model, monkeypatch,
                                                                             capsys):
    from app.services.models import FALLBACK_MODEL, model_or_default

    assert model_or_default(None)[0] == model_or_default("default")[0] == FALLBACK_MODEL == "raw:smollm2-135m:mean"
    assert model_or_default("tiny") == ("tiny", "")
    monkeypatch.setattr("app.services.models.FALLBACK_MODEL", "raw:tiny-llama:mean")  # fast stand-in
    assert main(["encode", "hello"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["model"] == "raw:tiny-llama:mean"
    assert "No trained model is shipped" in captured.err


def test_prepare_refuses_tiny_presets_and_unknown_names(capsys):
    assert main(["prepare", "tiny-llama"]) == 2
    assert "needs no preparation" in capsys.readouterr().err
    assert main(["prepare", "gpt-17"]) == 2
    assert "unknown backbone 'gpt-17'" in capsys.readouterr().err


def test_encode_json_from_arguments_matches_the_python_api(capsys):
    assert main(["encode", "--model", "tiny", "--instruction", "find it", "first text", "second text"]) == 0
    payload = json.loads(capsys.readouterr().out)
    expected = PromptEmbedder.from_pretrained("tiny", device="cpu").encode(["first text", "second text"],
                                                                           instruction="find it")
    assert payload["dimension"] == expected.shape[1]
    np.testing.assert_allclose(np.array(payload["embeddings"]), expected, atol=1e-5)


def test_encode_reads_stdin_and_writes_npy(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("one\ntwo\nthree\n"))
    out = tmp_path / "v.npy"
    assert main(["encode", "--model", "tiny-gemma3", "--document", "--format", "npy", "-o", str(out)]) == 0
    vectors = np.load(out)
    assert vectors.shape == (3, 40)
    expected = PromptEmbedder.from_pretrained("tiny-gemma3", device="cpu").encode_document(["one", "two", "three"])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_encode_errors_are_messages_not_tracebacks():
    result = run_cli("encode", "--model", "no-such-model", "x")
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown model 'no-such-model'") and "Traceback" not in result.stderr
    result = run_cli("encode", "--model", "tiny", stdin="")
    assert result.returncode == 2 and "no texts" in result.stderr


def test_help_describes_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("models", "prepare", "encode"):
        assert command in result.stdout


@pytest.mark.real
def test_smollm2_loads_offline_and_ranks_related_sentences_higher(require_backbone):
    require_backbone("smollm2-135m")
    model = PromptEmbedder.from_pretrained("raw:smollm2-135m:mean", device="cpu")
    query = model.encode("How do I bake bread at home?", instruction="")
    docs = model.encode_document([
        "Mix flour, water, yeast and salt, let the dough rise, then bake it in a hot oven.",
        "The stock market fell sharply after the central bank raised interest rates.",
    ])
    assert docs @ query @ np.array([1.0, -1.0]) > 0
    dual = PromptEmbedder.from_pretrained("smollm2-135m", device="cpu")  # untrained dual-LLM on it
    assert dual.encode(["a sentence"]).shape == (1, 576)
