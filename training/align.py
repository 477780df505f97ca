"""Alignment-only adaptation: move a trained checkpoint to a new Embedding LLM.

The Prompting LLM stays frozen (its soft tokens do not depend on E); only a new alignment matrix
from P's space into the new backbone's embedding space is trained, with the same loss and data.
The saved checkpoint keeps every earlier alignment and gains one for the new backbone, so
`--backbone` picks either at load time.
"""
from __future__ import annotations

import torch

from embedder.backbones import load_backbone
from embedder.model import EmbeddingLLM, new_alignment

from .errors import TrainingError


def attach_backbone(model, backbone: str, seed: int = 0):
    """The model with a new Embedding LLM and a fresh alignment; the old alignment is kept aside."""
    if model.prompter is None:
        raise TrainingError("alignment needs a PromptEmbedder checkpoint with a Prompting LLM, not a text-mode model")
    if backbone == model.embedding.name:
        raise TrainingError(f"the checkpoint already runs on '{backbone}'; name another backbone")
    device, dtype = model.device, model.dtype_name
    lm, tokenizer = load_backbone(backbone)
    embedding = EmbeddingLLM(lm, tokenizer, backbone, model.config.placement, model.config.pooling)
    # the old alignment is kept; re-aligning replaces an earlier alignment to this backbone
    model.set_embedding(embedding, new_alignment(model.prompter, embedding, seed, model.config.deep_rank))
    model.to_device(device, dtype)
    model.train()  # clears the soft-prompt cache and the fingerprint of the old backbone
    return model


def changed_groups(before: dict[str, dict[str, torch.Tensor]], after: dict[str, dict[str, torch.Tensor]]) -> list[str]:
    """Which weight groups differ between two trained_state snapshots (a check the tests use)."""
    changed = []
    for group in sorted(set(before) | set(after)):
        old, new = before.get(group, {}), after.get(group, {})
        if old.keys() != new.keys() or any(not torch.equal(old[k], new[k]) for k in old):
            changed.append(group)
    return changed
