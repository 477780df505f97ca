"""The LoRA baseline: PEFT LoRA on the Embedding LLM, the instruction written before the query as text.

Same data, loss, batch, lengths and steps as PromptEmbedder (the same Trainer in mode "lora"); the
result is a PromptEmbedder checkpoint in text mode with an `embedding_lora` adapter, so encode,
evaluate and index accept it like any other model.
"""
from __future__ import annotations

import torch

from embedder.model import LORA_TARGETS, PromptEmbedderConfig


def lora_config(backbone: str, rank: int = 16, alpha: int | None = None, dropout: float = 0.0,
                targets: list[str] | None = None, pooling: str = "last",
                query_instruction: str = PromptEmbedderConfig.query_instruction,
                max_length: int = 512) -> PromptEmbedderConfig:
    """A text-mode config with a LoRA adapter on every attention and MLP projection of E."""
    return PromptEmbedderConfig(
        embedding_backbone=backbone, prompting_backbone=None, pooling=pooling,
        query_instruction=query_instruction, document_instruction="", max_length=max_length,
        embedding_lora={"r": rank, "lora_alpha": alpha or 2 * rank, "lora_dropout": dropout,
                        "target_modules": list(targets or LORA_TARGETS)},
    )


def build_lora_model(config: PromptEmbedderConfig, seed: int = 0, device: str | None = None):
    """A fresh baseline model (the adapter's random init seeded)."""
    from embedder import PromptEmbedder

    torch.manual_seed(seed)
    return PromptEmbedder.from_config(config, seed=seed).to_device(device)
