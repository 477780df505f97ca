"""The PromptEmbedder model: backbones, the dual-LLM embedder and its checkpoints.

Importable with torch, transformers, peft and safetensors alone (no faiss, gradio, sqlalchemy).
"""
from .backbones import BACKBONES, Backbone, BackboneError, get_backbone, load_backbone, prepare
from .model import Alignment, EmbeddingLLM, PromptEmbedder, PromptEmbedderConfig, PromptingLLM

__all__ = [
    "BACKBONES", "Backbone", "BackboneError", "get_backbone", "load_backbone", "prepare",
    "PromptEmbedder", "PromptEmbedderConfig", "PromptingLLM", "Alignment", "EmbeddingLLM",
]
