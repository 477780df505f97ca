"""Soft prompts for several instructions in one batched pass of the Prompting LLM.

A training step needs two prompts (the query instruction and the document instruction). Run one
at a time, the Prompting LLM's K sequential decoding steps cost thousands of small kernel launches
forward and backward, twice; batched, half. Same relaxation as `PromptingLLM.forward` (its
`_relax`), same result up to float rounding (Gumbel draws differ in order while training).

Instructions are right-padded: pad positions still see the real tokens before them, so no row of
attention is fully masked (fully masked rows give NaN gradients), and each row's first generated
token is read at its own last real position.
"""
from __future__ import annotations

import torch

from embedder.model import _input_embedding_matrix


def generate_soft_tokens(prompter, instructions: list[str], tau: float) -> torch.Tensor:
    """(N, K, d_P) soft token vectors, one row per instruction."""
    lm, tokenizer = prompter.lm, prompter.tokenizer
    device = next(lm.parameters()).device
    rows = [tokenizer(text or " ", return_tensors="pt").input_ids[0].tolist() for text in instructions]
    lengths = torch.tensor([len(r) for r in rows], device=device)
    width = int(lengths.max())
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
    mask = (torch.arange(width, device=device)[None] < lengths[:, None]).long()
    positions = torch.arange(width, device=device)[None].expand(len(rows), -1)
    table = _input_embedding_matrix(lm)
    out = lm(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, output_hidden_states=True)
    last = lengths - 1
    hidden = out.hidden_states[-1][torch.arange(len(rows), device=device), last]
    logits = out.logits[torch.arange(len(rows), device=device), last]
    vectors = []
    for step in range(prompter.num_tokens):
        mixed = prompter._relax(logits, tau).to(table.dtype) @ table
        vectors.append(hidden if prompter.source == "hidden" else mixed)
        if step + 1 == prompter.num_tokens:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        out = lm(inputs_embeds=mixed[:, None], attention_mask=mask, position_ids=(lengths + step)[:, None],
                 past_key_values=out.past_key_values, use_cache=True, output_hidden_states=True)
        hidden, logits = out.hidden_states[-1][:, -1], out.logits[:, -1]
    return torch.stack(vectors, 1).float()


def soft_prompts(model, instructions: list[str]) -> dict[str, torch.Tensor]:
    """Aligned (K, d_E) soft prompts by instruction, from one pass of P (none in text mode)."""
    if model.prompter is None:
        return {text: None for text in instructions}
    unique = list(dict.fromkeys(instructions))
    aligned = model.alignment(generate_soft_tokens(model.prompter, unique, model.gumbel_tau))
    return dict(zip(unique, aligned.unbind(0)))


def embed(model, token_lists: list[list[int]], soft: torch.Tensor | None, cached_text: bool) -> torch.Tensor:
    """E's pooled output for texts with a given soft prompt (what PromptEmbedder.forward does after P)."""
    if cached_text and soft is not None and model.config.placement == "suffix":
        return model.embedding.forward_suffix_cached(token_lists, soft)
    return model.embedding(token_lists, soft)
