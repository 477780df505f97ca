"""The model: gradient flow, padding, placement, caching and checkpoints, on the tiny presets."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from embedder import BackboneError, PromptEmbedder, PromptEmbedderConfig

ARCHS = ["tiny-llama", "tiny-qwen2", "tiny-gemma3"]
# PROMPTEMBEDDER_TEST_DEVICE=cuda runs this file on the GPU, where E computes in bf16
DEVICE = os.environ.get("PROMPTEMBEDDER_TEST_DEVICE", "cpu")
ATOL = 2e-5 if DEVICE == "cpu" else 3e-2
TEXTS = [
    "The cat sat on the mat.",
    "Search engines index documents and answer queries with the few that matter most.",
    "Python",
    "A dog runs in the park while the cat watches from the window.",
]


def build(arch: str = "tiny-llama", **overrides) -> PromptEmbedder:
    config = PromptEmbedderConfig(embedding_backbone=arch, prompting_backbone="tiny-llama",
                                  prompter_weights="full", **overrides)
    return PromptEmbedder.from_config(config).to_device(DEVICE)


def contrastive_loss(model: PromptEmbedder, cached_text: bool = False) -> torch.Tensor:
    queries = model(model.tokenize(TEXTS[:2], "find it"), "find it", cached_text=cached_text)
    docs = model(model.tokenize(TEXTS[2:], "a document"), "a document", cached_text=cached_text)
    logits = F.normalize(queries, dim=-1) @ F.normalize(docs, dim=-1).T / 0.05
    return F.cross_entropy(logits, torch.arange(2, device=logits.device))


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("placement", ["prefix", "suffix"])
def test_one_step_trains_prompter_and_alignment_never_the_embedding_llm(arch, placement):
    model = build(arch, placement=placement)
    model.train()
    assert not any(p.requires_grad for p in model.embedding.parameters())
    before_e, before_p, before_a = snapshot(model.embedding), snapshot(model.prompter), snapshot(model.alignment)

    soft = model.soft_prompt("find it")
    soft.inputs.retain_grad()
    docs = model.embedding(model.tokenize(TEXTS, ""), soft)
    (F.normalize(docs, dim=-1) @ F.normalize(docs, dim=-1).T).triu(1).sum().backward()
    assert torch.isfinite(soft.inputs.grad).all() and soft.inputs.grad.abs().sum() > 0

    model.zero_grad()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    contrastive_loss(model, cached_text=placement == "suffix").backward()
    optimizer.step()

    after_e = model.embedding.state_dict()
    assert all(torch.equal(before_e[k], after_e[k]) for k in before_e), "the Embedding LLM changed"
    assert any(not torch.equal(before_p[k], v) for k, v in model.prompter.state_dict().items())
    assert any(not torch.equal(before_a[k], v) for k, v in model.alignment.state_dict().items())


@pytest.mark.parametrize("arch", ARCHS)
def test_instructions_matter_and_encoding_is_deterministic(arch):
    model = build(arch)
    a = model.encode(TEXTS, instruction="Given a claim, find evidence")
    b = model.encode(TEXTS, instruction="Find a paraphrase")
    assert a.shape == (4, model.dimension) and a.dtype == np.float32
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(a, model.encode(TEXTS, instruction="Given a claim, find evidence"))
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("placement", ["prefix", "suffix"])
@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("left_pad", [False, True])
def test_batch_equals_one_by_one_with_either_padding_side(arch, placement, pooling, left_pad):
    model = build(arch, placement=placement, pooling=pooling)
    model.set_padding_side("left" if left_pad else "right")
    batch = model.encode(TEXTS, instruction="find it", batch_size=4)
    single = np.stack([model.encode(t, instruction="find it") for t in TEXTS])
    np.testing.assert_allclose(batch, single, atol=ATOL)


def test_padding_side_does_not_change_the_vectors():
    model = build("tiny-llama")
    right = model.encode(TEXTS, instruction="find it")
    model.set_padding_side("left")
    np.testing.assert_allclose(model.encode(TEXTS, instruction="find it"), right, atol=ATOL)


@pytest.mark.parametrize("arch", ARCHS)
def test_suffix_text_states_do_not_depend_on_the_instruction(arch):
    model = build(arch, placement="suffix").eval()
    tokens = model.tokenize(TEXTS, "")
    with torch.no_grad():
        _, h1, lay = model.embedding(tokens, model.soft_prompt("find evidence"), output_hidden=True)
        _, h2, _ = model.embedding(tokens, model.soft_prompt("find a paraphrase"), output_hidden=True)
    text = (lay.attention_mask == 1) & (lay.soft_index < 0)
    soft = lay.soft_index >= 0
    torch.testing.assert_close(h1[text], h2[text])  # exact: same kernels, same inputs
    assert (h1[soft] - h2[soft]).abs().max() > 1e-4


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_cached_two_pass_suffix_equals_single_pass(arch, pooling):
    model = build(arch, placement="suffix", pooling=pooling).eval()
    tokens = model.tokenize(TEXTS, "")
    with torch.no_grad():
        soft = model.soft_prompt("find it")
        torch.testing.assert_close(model.embedding.forward_suffix_cached(tokens, soft),
                                   model.embedding(tokens, soft), atol=ATOL, rtol=1e-4)


def test_soft_prompt_is_cached_at_inference_and_recomputed_in_training():
    model = build().eval()
    with torch.no_grad():
        assert model.soft_prompt("a") is model.soft_prompt("a")
    model.train()
    assert model.soft_prompt("a") is not model.soft_prompt("a")
    assert model.soft_prompt("a").inputs.requires_grad


def test_straight_through_and_embedding_source_run_and_differ():
    base = build().encode(TEXTS[:2])
    for overrides in ({"straight_through": True}, {"soft_token_source": "embedding"}):
        vectors = build(**overrides).encode(TEXTS[:2])
        assert np.isfinite(vectors).all() and np.abs(vectors - base).max() > 1e-4


def test_alignment_matches_the_embedding_scale_of_gemma():
    model = build("tiny-gemma3")
    table = model.embedding.lm.get_input_embeddings()
    real_norm = table(torch.arange(100, device=model.device)).float().norm(dim=-1).mean()
    with torch.no_grad():
        soft_norm = model.soft_prompt("x").inputs.float().norm(dim=-1).mean().to(real_norm.device)
    assert real_norm > table.weight[:100].float().norm(dim=-1).mean() * 2  # Gemma scales by sqrt(d)
    torch.testing.assert_close(soft_norm, real_norm, rtol=0.05, atol=0)


def perturb(model: PromptEmbedder) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.02)


@pytest.mark.parametrize("kind", ["full", "lora", "text-lora"])
def test_save_and_load_reproduce_the_vectors_exactly(tmp_path, kind):
    if kind == "text-lora":
        config = PromptEmbedderConfig(prompting_backbone=None, embedding_lora={"r": 4}, pooling="mean")
    else:
        config = PromptEmbedderConfig(prompter_weights=kind, prompter_lora={"r": 4} if kind == "lora" else None)
    model = PromptEmbedder.from_config(config).to_device(DEVICE)
    perturb(model)
    expected = model.encode(TEXTS, instruction="find it")
    model.save_pretrained(tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert all(name.endswith((".json", ".safetensors")) for name in files), files
    loaded = PromptEmbedder.from_pretrained(tmp_path / "ckpt", device=DEVICE)
    np.testing.assert_array_equal(loaded.encode(TEXTS, instruction="find it"), expected)
    assert loaded.fingerprint == model.fingerprint
    assert build().fingerprint != model.fingerprint


def test_checkpoint_references_the_backbones_and_never_copies_them(tmp_path):
    model = PromptEmbedder.from_pretrained("tiny", device=DEVICE)
    model.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["embedding_backbone"] == "tiny-llama" and config["aligned_backbones"] == ["tiny-llama"]
    assert not (tmp_path / "ckpt" / "prompter.safetensors").exists()  # registry weights, by name


def test_bad_model_names_and_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(BackboneError, match="unknown model 'nope'.*tiny"):
        PromptEmbedder.from_pretrained("nope")
    with pytest.raises(BackboneError, match="unknown backbone 'nope'"):
        PromptEmbedder.from_pretrained("raw:nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="not a PromptEmbedder checkpoint"):
        PromptEmbedder.from_pretrained(tmp_path / "empty")
    model = build()
    model.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(BackboneError, match="no alignment for backbone 'tiny-qwen2'.*promptembedder align"):
        PromptEmbedder.from_pretrained(tmp_path / "ckpt", backbone="tiny-qwen2")
    (tmp_path / "ckpt" / "alignment-tiny-llama.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(BackboneError, match="cannot read"):
        PromptEmbedder.from_pretrained(tmp_path / "ckpt")


def test_encode_rejects_non_text_and_handles_empty_input():
    model = build()
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        model.encode(["ok", 3])
    assert model.encode([]).shape == (0, model.dimension)
    assert model.encode("one text").shape == (model.dimension,)


def test_text_mode_writes_the_instruction_as_text():
    model = PromptEmbedder.from_pretrained("raw:tiny-llama", device=DEVICE)
    assert model.prompter is None
    plain = model.encode_document(TEXTS)
    np.testing.assert_array_equal(plain, model.encode(TEXTS, instruction=""))
    assert np.abs(model.encode(TEXTS, instruction="find it") - plain).max() > 1e-4


def test_backbone_identity_follows_the_converted_weights(tmp_path, monkeypatch):
    """Two conversions of one GGUF can differ (transformers versions did, for Gemma-3): the identity
    that fingerprints, caches and indexes rely on must follow the files, not the name."""
    from embedder import get_backbone
    from embedder.backbones import READY_MARKER

    monkeypatch.setenv("PROMPTEMBEDDER_CACHE", str(tmp_path))
    folder = tmp_path / "smollm2-135m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights-a")
    (folder / READY_MARKER).write_text(json.dumps({"files": {"model.safetensors": 9}}))  # an older marker
    backbone = get_backbone("smollm2-135m")
    first = backbone.weights_id()
    assert "sha256" in json.loads((folder / READY_MARKER).read_text())  # recorded once, for next time
    assert backbone.weights_id() == first
    (folder / "model.safetensors").write_bytes(b"weights-b")
    marker = json.loads((folder / READY_MARKER).read_text())
    del marker["sha256"]
    (folder / READY_MARKER).write_text(json.dumps(marker))
    assert backbone.weights_id() != first


def test_from_pretrained_without_a_name_loads_the_shipped_model_on_the_backbone_for_the_machine(shipped_model):
    from embedder.checkpoint import load_checkpoint

    on_cpu = PromptEmbedder.from_pretrained(device="cpu")
    assert on_cpu.embedding.name == "tiny-llama"  # its cpu_backbone: no GPU here
    assert PromptEmbedder.from_pretrained("default", device="cpu").fingerprint == on_cpu.fingerprint
    explicit = PromptEmbedder.from_pretrained(shipped_model, backbone="tiny-llama", device="cpu")
    np.testing.assert_array_equal(on_cpu.encode(TEXTS), explicit.encode(TEXTS))
    assert on_cpu.fingerprint == explicit.fingerprint
    # on CUDA it runs on the backbone it was trained on (decided by the device, checked here without a GPU)
    assert load_checkpoint(PromptEmbedder, shipped_model, cuda=True).embedding.name == "tiny-qwen2"
    # an explicit backbone wins; the fingerprint follows the backbone that runs
    trained = PromptEmbedder.from_pretrained(backbone="tiny-qwen2", device="cpu")
    assert trained.embedding.name == "tiny-qwen2" and trained.fingerprint != on_cpu.fingerprint
    assert trained.dimension == 48 and on_cpu.dimension == 32
    with pytest.raises(BackboneError, match="no alignment for backbone 'tiny-gemma3'.*promptembedder align"):
        PromptEmbedder.from_pretrained(None, backbone="tiny-gemma3", device="cpu")


def test_from_pretrained_cpu_backbone_is_optional_and_only_used_when_aligned(shipped_model, tmp_path):
    import shutil

    config = json.loads((shipped_model / "config.json").read_text())
    assert config["embedding_backbone"] == "tiny-qwen2" and config["cpu_backbone"] == "tiny-llama"
    old = shutil.copytree(shipped_model, tmp_path / "old")  # a config written before cpu_backbone existed
    (old / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "cpu_backbone"}))
    assert PromptEmbedder.from_pretrained(old, device="cpu").embedding.name == "tiny-qwen2"
    (old / "config.json").write_text(json.dumps({**config, "cpu_backbone": "tiny-gemma3"}))  # not aligned
    model = PromptEmbedder.from_pretrained(old, device="cpu")
    assert model.embedding.name == "tiny-qwen2"
    # bookkeeping only: naming a CPU backbone changes no vector, so no fingerprint (indexes, caches)
    before = model.fingerprint
    model.config.cpu_backbone, model._fingerprint = None, None
    assert model.fingerprint == before


def test_from_pretrained_without_a_name_says_none_is_shipped(no_shipped_model):
    for name in (None, "default"):
        with pytest.raises(BackboneError, match="no trained default model is shipped yet"):
            PromptEmbedder.from_pretrained(name)
