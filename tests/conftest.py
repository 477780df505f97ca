"""Every test gets its own PROMPTEMBEDDER_HOME; the converted backbone cache is shared (read-only use)."""
from __future__ import annotations

import os

import pytest

from embedder.home import backbone_cache

_REAL_CACHE = str(backbone_cache())  # resolved once, before any test moves the home


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PROMPTEMBEDDER_CACHE", os.environ.get("PROMPTEMBEDDER_CACHE", _REAL_CACHE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    # reference numerics: "auto" would be bf16 on a CPU with native bf16, and the exactness tests compare at
    # fp32 tolerances; the bf16 path has its own tests (test_dtypes.py)
    monkeypatch.setenv("PROMPTEMBEDDER_DTYPE", "fp32")
    return tmp_path / "home"


@pytest.fixture
def one_thread():
    """Training tests: one thread is fast on a shared CPU and bit-for-bit repeatable."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def require_backbone():
    """Call with a backbone name: skips a real-backbone test, naming the command that makes it runnable."""
    from embedder.backbones import get_backbone

    def require(name: str) -> None:
        status = get_backbone(name).status()
        if status != "ready":
            pytest.skip(f"{name} is {status}; run `promptembedder prepare {name}`")

    return require


@pytest.fixture(scope="session")
def tiny_default_checkpoint(tmp_path_factory):
    """A stand-in for assets/default-model: trained on tiny-qwen2 (for Qwen), aligned to tiny-llama too
    (for SmolLM2), which it runs on without a GPU (cpu_backbone). Written as the real one is assembled."""
    from embedder import PromptEmbedder, PromptEmbedderConfig
    from training.align import attach_backbone

    folder = tmp_path_factory.mktemp("default-model")
    model = PromptEmbedder.from_config(PromptEmbedderConfig(embedding_backbone="tiny-qwen2")).to_device("cpu")
    attach_backbone(model, "tiny-llama").save_pretrained(folder / "aligned")
    model = PromptEmbedder.from_pretrained(folder / "aligned", backbone="tiny-qwen2", device="cpu")
    model.config.cpu_backbone = "tiny-llama"
    return model.save_pretrained(folder / "default-model")


@pytest.fixture
def shipped_model(tiny_default_checkpoint, monkeypatch):
    """The tiny stand-in as the shipped default model; returns its directory."""
    monkeypatch.setattr("embedder.checkpoint.DEFAULT_MODEL_DIR", tiny_default_checkpoint)
    return tiny_default_checkpoint


@pytest.fixture
def no_shipped_model(tmp_path, monkeypatch):
    """No default model shipped, whatever assets/ holds."""
    monkeypatch.setattr("embedder.checkpoint.DEFAULT_MODEL_DIR", tmp_path / "no-default-model")
