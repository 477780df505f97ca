"""What one training step asks of the model, in batched form: both sides' soft prompts from one pass of
the Prompting LLM (`PromptingLLM.generate`), and E's pooled output for a side's texts.

A training step needs two prompts (the query instruction and the document instruction). Run one
at a time, the Prompting LLM's K sequential decoding steps cost thousands of small kernel launches
forward and backward, twice; batched, half.
"""
from __future__ import annotations

import torch


def soft_prompts(model, instructions: list[str]) -> dict[str, torch.Tensor]:
    """Aligned (K, d_E) soft prompts by instruction, from one pass of P (none in text mode)."""
    if model.prompter is None:
        return {text: None for text in instructions}
    unique = list(dict.fromkeys(instructions))
    aligned = model.alignment(model.prompter.generate(unique, model.gumbel_tau))
    return dict(zip(unique, aligned.unbind(0)))


def embed(model, token_lists: list[list[int]], soft: torch.Tensor | None, cached_text: bool) -> torch.Tensor:
    """E's pooled output for texts with a given soft prompt (what PromptEmbedder.forward does after P)."""
    if cached_text and soft is not None and model.config.placement == "suffix":
        return model.embedding.forward_suffix_cached(token_lists, soft)
    return model.embedding(token_lists, soft)
