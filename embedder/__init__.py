"""The PromptEmbedder model: backbones, the dual-LLM embedder and its checkpoints.

Importable with torch, transformers, peft and safetensors alone (no faiss, gradio, sqlalchemy).
Exports resolve lazily, so `embedder.backbones` (names, readiness) answers without importing torch.
"""
import importlib

_EXPORTS = {
    "BACKBONES": "backbones", "Backbone": "backbones", "BackboneError": "backbones", "get_backbone": "backbones",
    "load_backbone": "backbones", "prepare": "backbones",
    "PromptEmbedder": "model", "PromptEmbedderConfig": "config", "PromptingLLM": "model", "Alignment": "model",
    "EmbeddingLLM": "model",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'embedder' has no attribute {name!r}")
