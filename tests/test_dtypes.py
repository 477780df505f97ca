"""The frozen Embedding LLM's dtype: what "auto" picks, bf16 parity with fp32, fingerprints, no deprecation noise."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from embedder import PromptEmbedder, PromptEmbedderConfig
from embedder.model import resolve_dtype

TEXTS = ["The cat sat on the mat.", "Search engines index documents and answer queries.", "Python",
         "A dog runs in the park while the cat watches from the window."]


def tiny(dtype: str) -> PromptEmbedder:
    config = PromptEmbedderConfig(embedding_backbone="tiny-qwen2", prompter_weights="full")
    return PromptEmbedder.from_config(config).to_device("cpu", dtype)


def test_auto_is_bf16_only_where_the_hardware_runs_it(monkeypatch):
    monkeypatch.delenv("PROMPTEMBEDDER_DTYPE")
    cpu = torch.device("cpu")
    monkeypatch.setattr("embedder.model.cpu_has_native_bf16", lambda: True)
    assert resolve_dtype("auto", cpu) == torch.bfloat16 and resolve_dtype(None, cpu) == torch.bfloat16
    monkeypatch.setattr("embedder.model.cpu_has_native_bf16", lambda: False)
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16 and resolve_dtype("fp32", cpu) == torch.float32
    monkeypatch.setenv("PROMPTEMBEDDER_DTYPE", "bf16")  # what auto means for a process
    assert resolve_dtype("auto", cpu) == torch.bfloat16 and resolve_dtype("fp32", cpu) == torch.float32
    with pytest.raises(ValueError, match="dtype must be one of auto, fp32, bf16"):
        resolve_dtype("float16", cpu)


def test_bf16_runs_only_the_frozen_embedding_llm_in_bf16_and_keys_its_vectors_apart():
    full, half = tiny("fp32"), tiny("bf16")
    assert half.dtype_name == "bf16" and full.dtype_name == "fp32"
    assert next(half.embedding.lm.parameters()).dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in half.prompter.parameters())  # what trains stays fp32
    assert all(p.dtype == torch.float32 for p in half.alignment.parameters())
    assert half.fingerprint != full.fingerprint  # an index never mixes bf16 and fp32 vectors
    assert half.to_device("cpu", "fp32").fingerprint == full.fingerprint
    vectors = tiny("bf16").encode(TEXTS)
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * full.encode(TEXTS)).sum(1)
    assert cosine.min() > 0.98, cosine  # tiny random weights: loose; the real backbone's bound is below


def test_a_lora_baseline_keeps_its_adapters_exact_in_fp32_under_a_bf16_embedding_llm():
    from training.lora_baseline import build_lora_model, lora_config

    torch.manual_seed(0)
    model = build_lora_model(lora_config("tiny-llama", rank=4), device="cpu")
    for name, p in model.embedding.lm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)  # not bf16-representable values
    adapters = {n: p.detach().clone() for n, p in model.embedding.lm.named_parameters() if "lora_" in n}
    model.to_device("cpu", "bf16")
    after = dict(model.embedding.lm.named_parameters())
    assert all(after[n].dtype == torch.float32 and torch.equal(after[n], adapters[n]) for n in adapters)
    assert all(p.dtype == torch.bfloat16 for n, p in after.items() if "lora_" not in n)  # the frozen base
    assert model.dtype_name == "bf16" and model.encode(TEXTS).shape[0] == len(TEXTS)


def test_training_step_with_a_bf16_embedding_llm_reaches_fp32_trainable_weights():
    model = tiny("bf16").train()
    queries = model(model.tokenize(TEXTS[:2], "find it"), "find it", cached_text=True)
    docs = model(model.tokenize(TEXTS[2:], "a document"), "a document", cached_text=True)
    (queries.float() @ docs.float().T).trace().backward()
    grads = [p.grad for p in model.alignment.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.embedding.lm.parameters())


def test_encoding_and_training_print_no_deprecation_warning(capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = PromptEmbedderConfig(embedding_backbone="tiny-llama", prompter_weights="lora")
        model = PromptEmbedder.from_config(config).to_device("cpu")
        model.encode(TEXTS)
        model.train()
        model(model.tokenize(TEXTS, "find it"), "find it", cached_text=True).sum().backward()
    messages = [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert not [m for m in messages if "transformers" in m or "past_key_values" in m or "checkpointing" in m], messages
    assert "deprecated" not in capfd.readouterr().err


@pytest.mark.real
def test_bf16_matches_fp32_on_smollm2(require_backbone):
    require_backbone("smollm2-135m")
    full = PromptEmbedder.from_pretrained("raw:smollm2-135m:mean", device="cpu", dtype="fp32")
    half = PromptEmbedder.from_pretrained("raw:smollm2-135m:mean", device="cpu", dtype="bf16")
    texts = TEXTS + ["Mix flour, water, yeast and salt, let the dough rise, then bake it in a hot oven."]
    cosine = (full.encode_document(texts) * half.encode_document(texts)).sum(1)
    assert cosine.min() >= 0.999, cosine


def test_encode_bench_compares_a_merged_lora_adapter_with_the_unmerged_one(tmp_path, capsys):
    from embedder.bench import main
    from training.lora_baseline import build_lora_model, lora_config

    torch.manual_seed(0)
    model = build_lora_model(lora_config("tiny-llama", rank=4), device="cpu")
    for name, p in model.embedding.lm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)  # a trained-looking adapter: merging changes E's weights
    model.save_pretrained(tmp_path / "lora")
    out = tmp_path / "bench.json"
    assert main(["--models", str(tmp_path / "lora"), "raw:tiny-llama", "--dtypes", "fp32", "--batch-size", "2",
                 "--length", "8", "--batches", "1", "--device", "cpu", "--compare-lora-merge",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["lora"] for r in rows] == ["unmerged", "merged", None]  # the raw backbone has no adapter to merge
    assert rows[1]["speedup_vs_unmerged"] > 0 and rows[1]["parity_min_cosine_vs_unmerged"] > 0.9999
    assert "speedup_vs_unmerged" not in rows[2]
    assert "vs unmerged" in capsys.readouterr().out
