"""PromptEmbedder: a Prompting LLM writes K soft tokens for an instruction, an alignment matrix maps
them into a frozen Embedding LLM, which reads them with the text and yields the embedding.

    instruction --P (relaxed generation)--> K x d_P --A--> K x d_E --+
    text --------------------------------- token embeddings --------+--> E (frozen) --> pool --> vector

The same class also runs "text mode" (no Prompting LLM: the instruction is written before the text
as plain words), which is how the raw-backbone and LoRA baselines are expressed, so every command
that takes a model accepts them all.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import inspect
import json
import os
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .backbones import get_backbone, load_backbone
from .checkpoint import load_checkpoint, resolve_model_name, save_checkpoint, trained_state
from .config import PromptEmbedderConfig
from .dtypes import DTYPE_CHOICES

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _input_embedding_matrix(lm: nn.Module) -> torch.Tensor:
    """The token embedding table at the scale the model really feeds its layers.

    Gemma multiplies looked-up embeddings by sqrt(d) inside its embedding module, so the raw weight
    is sqrt(d) times too small for anything passed as inputs_embeds.
    """
    emb = lm.get_input_embeddings()
    scale = getattr(emb, "embed_scale", None)
    return emb.weight * scale.to(emb.weight.dtype) if scale is not None else emb.weight


def base_decoder(lm: nn.Module) -> nn.Module:
    """The transformer without its LM head: we need hidden states, not 150k-way logits."""
    base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm  # PEFT wrapper
    return getattr(base, base.base_model_prefix)


def cache_arguments(decoder: nn.Module, cache=None) -> dict:
    """Keyword arguments that run a decoder with a KV cache (a new one when cache is None).

    transformers 5.24 renamed `past_key_values` to `cache` (the old name warns, and goes in 5.40);
    earlier 5.x releases, such as the GPU machine's 5.23, know only the old one."""
    return {_cache_argument_name(type(decoder)): cache, "use_cache": True}


@functools.lru_cache(maxsize=None)
def _cache_argument_name(decoder_class: type) -> str:
    """Read once per class: decoders are called K + 1 times per generation, twice per side per step."""
    return "cache" if "cache" in inspect.signature(decoder_class.forward).parameters else "past_key_values"


def returned_cache(output):
    """The KV cache a decoder returned, under either name (see cache_arguments)."""
    return output["cache"] if "cache" in output else output["past_key_values"]


def add_lora(lm: nn.Module, settings: dict) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    settings = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": LORA_TARGETS, **settings}
    with warnings.catch_warnings():  # peft reads a property transformers 5.2x deprecated: not the user's business
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(lm, LoraConfig(**settings))


class PromptingLLM(nn.Module):
    """Generates K soft tokens per instruction by differentiable (relaxed) decoding, a batch of
    instructions at once.

    Step t: logits z_t -> y_t = softmax((z_t + g_t) / tau) -> e_{t+1} = y_t @ E_P, fed back through
    inputs_embeds with the KV cache. g_t is Gumbel noise while training, zero at inference. Logits are
    computed at each row's last position only (the LM head is a 49k-150k-way projection), and never
    where nothing reads them.

    Instructions are right-padded: pad positions still see the real tokens before them, so no row of
    attention is fully masked (fully masked rows give NaN gradients), and each row's first generated
    token is read at its own last real position.
    """

    def __init__(self, lm: nn.Module, tokenizer, num_tokens: int, source: str, straight_through: bool):
        super().__init__()
        self.lm, self.tokenizer = lm, tokenizer
        self.num_tokens, self.source, self.straight_through = num_tokens, source, straight_through

    @property
    def hidden_size(self) -> int:
        return self.lm.config.hidden_size

    def _relax(self, logits: torch.Tensor, tau: float) -> torch.Tensor:
        logits = logits.float()
        if self.training:
            uniform = torch.rand_like(logits).clamp_(1e-10, 1.0 - 1e-10)
            logits = logits - torch.log(-torch.log(uniform))
        y = F.softmax(logits / tau, dim=-1)
        if self.straight_through:
            hard = F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)
            y = hard - y.detach() + y
        return y

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.lm.get_output_embeddings()(hidden)
        cap = getattr(self.lm.config, "final_logit_softcapping", None)  # Gemma's, as its own forward applies it
        return torch.tanh(logits / cap) * cap if cap else logits

    def generate(self, instructions: Sequence[str], tau: float) -> torch.Tensor:
        """(N, K, d_P) soft token vectors, one row per instruction, from one batched pass."""
        device = next(self.lm.parameters()).device
        rows = [list(self.tokenizer(text or " ").input_ids) for text in instructions]
        count = len(rows)
        lengths = torch.tensor([len(r) for r in rows], device=device)
        width = int(lengths.max())
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
        mask = (torch.arange(width, device=device)[None] < lengths[:, None]).long()
        positions = torch.arange(width, device=device)[None].expand(count, -1)
        decoder, table = base_decoder(self.lm), _input_embedding_matrix(self.lm)
        out = decoder(input_ids=ids, attention_mask=mask, position_ids=positions, **cache_arguments(decoder))
        hidden = out.last_hidden_state[torch.arange(count, device=device), lengths - 1]
        vectors = []
        for step in range(self.num_tokens):
            last = step + 1 == self.num_tokens
            if self.source == "hidden":
                vectors.append(hidden)
                if last:
                    break
            mixed = self._relax(self._logits(hidden), tau).to(table.dtype) @ table
            if self.source == "embedding":
                vectors.append(mixed)
                if last:
                    break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            out = decoder(inputs_embeds=mixed[:, None], attention_mask=mask, position_ids=(lengths + step)[:, None],
                          **cache_arguments(decoder, returned_cache(out)))
            hidden = out.last_hidden_state[:, -1]
        return torch.stack(vectors, 1).float()


@dataclass
class SoftPrompt:
    """An instruction's aligned soft tokens, as the Embedding LLM reads them.

    A batch of instructions carries one more leading dim on both tensors; rows() splits it."""

    inputs: torch.Tensor  # (K, d_E): the input vectors at the K soft positions
    layer_offsets: torch.Tensor | None = None  # (layers, K, d_E): a deep alignment's offsets, added after each layer

    @property
    def num_tokens(self) -> int:
        return self.inputs.shape[-2]

    def rows(self) -> list[SoftPrompt]:
        """One SoftPrompt per instruction of a batched one."""
        offsets = [None] * len(self.inputs) if self.layer_offsets is None else self.layer_offsets.unbind(0)
        return [SoftPrompt(inputs, layer) for inputs, layer in zip(self.inputs.unbind(0), offsets)]


class Alignment(nn.Module):
    """The linear map from P's space into E's input-embedding space.

    Output vectors are rescaled to the mean norm of E's real token embeddings (times a learnable
    scale, bounded): soft tokens at the wrong scale are ignored or dominate, and unbounded norms
    are how plain soft prompts diverged in our first experiments.

    With deep_rank r > 0 it also maps P's vectors to one offset per layer of E (rank r, zero at
    initialisation, so training starts from the plain method), added to the residual stream at the
    soft positions: the soft tokens then steer every layer, not only the input. It is part of the
    alignment, so moving to another backbone still trains the alignment alone.
    """

    def __init__(self, d_in: int, d_out: int, target_norm: float, deep_rank: int = 0, layers: int = 0):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.register_buffer("target_norm", torch.tensor(float(target_norm)))
        if deep_rank:
            self.deep_down = nn.Linear(d_in, deep_rank, bias=False)
            self.deep_up = nn.Parameter(torch.zeros(layers, deep_rank, d_out))

    def forward(self, x: torch.Tensor) -> SoftPrompt:
        """x: (..., K, d_P), with any leading dims (a batch of instructions)."""
        y = self.proj(x)
        scale = self.target_norm * self.log_scale.clamp(-3.0, 3.0).exp()
        y = y / y.norm(dim=-1, keepdim=True).clamp_min(1e-6) * scale
        if not hasattr(self, "deep_up"):
            return SoftPrompt(y)
        return SoftPrompt(y, torch.einsum("...kr,lrd->...lkd", self.deep_down(x), self.deep_up))


@dataclass
class Layout:
    """One padded batch: where the text tokens, the soft tokens and the pads sit."""

    input_ids: torch.Tensor  # (B, L); pad id at soft and pad positions
    attention_mask: torch.Tensor  # (B, L)
    position_ids: torch.Tensor  # (B, L), counted over real positions only
    soft_index: torch.Tensor  # (B, L), k for the k-th soft token, -1 elsewhere
    last_index: torch.Tensor  # (B,), last real position of each row


@dataclass
class TextPass:
    """E's no-grad pass over a batch of texts (suffix placement): what the soft tokens attend to."""

    cache: object  # the decoder's KV cache over the padded texts
    mask: torch.Tensor  # (B, L) real text positions
    text_sum: torch.Tensor | None  # (B, d_E) sum of the text's final states, for mean pooling


class EmbeddingLLM(nn.Module):
    """The frozen Embedding LLM: reads text plus soft tokens and pools one vector per text."""

    def __init__(self, lm: nn.Module, tokenizer, name: str, placement: str, pooling: str):
        super().__init__()
        lm.requires_grad_(False)
        lm.eval()
        self.lm, self.tokenizer, self.name = lm, tokenizer, name
        self.placement, self.pooling = placement, pooling
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.left_pad = tokenizer.padding_side == "left"

    def train(self, mode: bool = True):
        # E stays in eval mode (no dropout) whatever the composed model does
        return super().train(False)

    @property
    def hidden_size(self) -> int:
        return self.lm.config.hidden_size

    @torch.no_grad()
    def token_embedding_norm(self) -> float:
        return _input_embedding_matrix(self.lm).float().norm(dim=-1).mean().item()

    def layout(self, token_lists: Sequence[Sequence[int]], num_soft: int) -> Layout:
        lengths = [len(t) + num_soft for t in token_lists]
        batch, width = len(token_lists), max(lengths)
        ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        soft = torch.full((batch, width), -1, dtype=torch.long)
        last = torch.empty(batch, dtype=torch.long)
        for row, (tokens, n) in enumerate(zip(token_lists, lengths)):
            start = width - n if self.left_pad else 0
            text_start = start + (num_soft if self.placement == "prefix" else 0)
            soft_start = start if self.placement == "prefix" else start + len(tokens)
            ids[row, text_start:text_start + len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, start:start + n] = 1
            soft[row, soft_start:soft_start + num_soft] = torch.arange(num_soft)
            last[row] = start + n - 1
        positions = (mask.cumsum(1) - 1).clamp_(min=0)
        return Layout(ids, mask, positions, soft, last)

    def forward(self, token_lists: Sequence[Sequence[int]], soft: SoftPrompt | None,
                output_hidden: bool = False):
        """Pooled (B, d_E) embeddings, not normalised. soft: shared by the batch, or None (text mode)."""
        num_soft = 0 if soft is None else soft.num_tokens
        lay = self.layout(token_lists, num_soft)
        device = self.lm.get_input_embeddings().weight.device
        lay = Layout(*(t.to(device) for t in (lay.input_ids, lay.attention_mask, lay.position_ids,
                                              lay.soft_index, lay.last_index)))
        x = self.lm.get_input_embeddings()(lay.input_ids)
        is_soft = (lay.soft_index >= 0)[..., None]
        offsets = None
        if soft is not None:
            x = torch.where(is_soft, soft.inputs.to(x.dtype)[lay.soft_index.clamp(min=0)], x)
            offsets = soft.layer_offsets
        with self._deep_offsets(offsets, lay.soft_index):
            hidden = base_decoder(self.lm)(
                inputs_embeds=x, attention_mask=lay.attention_mask, position_ids=lay.position_ids, use_cache=False
            ).last_hidden_state
        pooled = self._pool(hidden, lay.attention_mask, lay.last_index)
        return (pooled, hidden, lay) if output_hidden else pooled

    def forward_suffix_cached(self, token_lists: Sequence[Sequence[int]], soft: SoftPrompt) -> torch.Tensor:
        """Suffix placement in two passes: the text without autograd, then only the K soft positions.

        Same result as forward() with placement "suffix" (the text never sees the soft tokens), at
        a fraction of the activation memory: only K positions per row are kept for backward.
        """
        return self.soft_pass(self.text_pass(token_lists), soft)

    @torch.no_grad()
    def text_pass(self, token_lists: Sequence[Sequence[int]]) -> "TextPass":
        """The suffix layout's first pass: E over the texts alone, kept as a KV cache. Nothing trained
        shapes it (E is frozen and the soft tokens come after the text), so it can serve many soft passes."""
        lay = self.layout(token_lists, 0)
        device = self.lm.get_input_embeddings().weight.device
        mask, positions = lay.attention_mask.to(device), lay.position_ids.to(device)
        decoder = base_decoder(self.lm)
        out = decoder(input_ids=lay.input_ids.to(device), attention_mask=mask, position_ids=positions,
                      **cache_arguments(decoder))
        text_sum = (out.last_hidden_state.float() * mask[..., None]).sum(1) if self.pooling == "mean" else None
        return TextPass(returned_cache(out), mask, text_sum)

    def soft_pass(self, text: "TextPass", soft: SoftPrompt, keep_text: bool = False) -> torch.Tensor:
        """Pooled (B, d_E) from the K soft positions over a text pass; differentiable through soft.

        keep_text: leave the text pass as it was, for another soft pass (the cache is copied: a pass
        appends the soft positions to it)."""
        device = text.mask.device
        cache = copy.deepcopy(text.cache) if keep_text else text.cache
        batch, k = text.mask.shape[0], soft.num_tokens
        lengths = text.mask.sum(1, keepdim=True)
        soft_positions = lengths + torch.arange(k, device=device)
        full_mask = torch.cat([text.mask, torch.ones(batch, k, dtype=text.mask.dtype, device=device)], 1)
        x = soft.inputs.to(self.lm.get_input_embeddings().weight.dtype)[None].expand(batch, -1, -1)
        decoder = base_decoder(self.lm)
        with self._deep_offsets(soft.layer_offsets):  # this pass holds exactly the K soft positions of every row
            hidden = decoder(inputs_embeds=x, attention_mask=full_mask, position_ids=soft_positions,
                             **cache_arguments(decoder, cache)).last_hidden_state
        if self.pooling == "last":
            return hidden[:, -1].float()
        return (text.text_sum + hidden.float().sum(1)) / (lengths + k)

    @contextlib.contextmanager
    def _deep_offsets(self, offsets: torch.Tensor | None, soft_index: torch.Tensor | None = None):
        """While the block runs, add offsets[l] (K, d_E) to the soft positions' output of decoder layer l.

        soft_index (B, L) places them in a full layout (-1: text or pad); without it the pass holds
        only the K soft positions."""
        if offsets is None:
            yield
            return

        def hook(layer_index: int):
            def add(module, inputs, output):
                hidden = output[0] if isinstance(output, tuple) else output  # tuples from older transformers
                offset = offsets[layer_index].to(hidden.dtype)
                if soft_index is None:
                    hidden = hidden + offset
                else:  # gathered per layer: a (layers, B, L, d_E) tensor would not fit long batches
                    hidden = hidden + offset[soft_index.clamp(min=0)] * (soft_index >= 0)[..., None]
                return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
            return add

        layers = base_decoder(self.lm).layers
        handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        if self.pooling == "last":
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
        weights = mask[..., None].to(hidden.dtype)
        return ((hidden * weights).sum(1) / weights.sum(1)).float()


class PromptEmbedder(nn.Module):
    """The composed model, with a sentence-transformers style encode()."""

    def __init__(self, config: PromptEmbedderConfig, embedding: EmbeddingLLM,
                 prompter: PromptingLLM | None, alignment: Alignment | None):
        super().__init__()
        config.validate()
        self.config, self.embedding, self.prompter, self.alignment = config, embedding, prompter, alignment
        # alignments to other Embedding LLMs (state dicts by backbone name): unused here, kept so that a saved
        # checkpoint still holds them and --backbone can pick one at load time (add_alignment, set_embedding)
        self.extra_alignments: dict[str, dict[str, torch.Tensor]] = {}
        self._gumbel_tau = config.gumbel_tau
        self._soft_cache: dict[str, SoftPrompt] = {}
        self._fingerprint: str | None = None

    # ----- construction ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: PromptEmbedderConfig, seed: int = 0) -> "PromptEmbedder":
        """A fresh model: registry backbones, a new (seeded) alignment, no trained weights."""
        config.validate()
        e_lm, e_tok = load_backbone(config.embedding_backbone)
        if config.embedding_lora is not None:
            e_lm = add_lora(e_lm, config.embedding_lora)
        embedding = EmbeddingLLM(e_lm, e_tok, config.embedding_backbone, config.placement, config.pooling)
        prompter = alignment = None
        if not config.text_mode:
            p_lm, p_tok = load_backbone(config.prompting_backbone)
            if config.prompter_weights == "lora":
                p_lm = add_lora(p_lm, config.prompter_lora or {})
            prompter = PromptingLLM(p_lm, p_tok, config.num_soft_tokens, config.soft_token_source,
                                    config.straight_through)
            alignment = new_alignment(prompter, embedding, seed, config.deep_rank)
        return cls(config, embedding, prompter, alignment)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike | None = None, backbone: str | None = None,
                        device: str | torch.device | None = None, dtype: str | None = None,
                        merge_lora: bool = True) -> "PromptEmbedder":
        """A preset name, a registry backbone, "raw:BACKBONE[:mean]", a saved directory, or None (or
        "default") for the shipped trained model.

        backbone picks which aligned Embedding LLM a checkpoint runs on (default: the one it was
        trained on; off CUDA its config's cpu_backbone when it has one). dtype: the frozen Embedding
        LLM's ("auto", "fp32", "bf16"; see resolve_dtype). merge_lora: fold a LoRA baseline's adapter
        into E for inference (see merge_lora); pass False to train or resume the model.
        """
        device = resolve_device(device)
        target = resolve_model_name(name_or_dir)
        if isinstance(target, PromptEmbedderConfig):
            if backbone is not None:
                target.embedding_backbone = backbone
            model = cls.from_config(target)
        else:
            model = load_checkpoint(cls, target, backbone, cuda=device.type == "cuda")
        model.to_device(device, dtype)
        return model.merge_lora() if merge_lora else model

    def to_device(self, device: str | torch.device | None = None, dtype: str | None = None) -> "PromptEmbedder":
        """Move to the device (CUDA when present) with the frozen E in the resolved dtype (bf16 where the
        hardware runs it natively). P and the alignment stay fp32: they train, and bf16 AdamW is fragile."""
        device = resolve_device(device)
        self.to(device)
        lm = self.embedding.lm
        adapters = {name: p.data for name, p in lm.named_parameters() if "lora_" in name}  # trained: kept fp32
        lm.to(resolve_dtype(dtype, device))
        for name, p in lm.named_parameters():
            if name in adapters:
                p.data = adapters[name]
        self._soft_cache.clear()
        self._fingerprint = None
        return self

    @property
    def dtype_name(self) -> str:
        """The frozen Embedding LLM's dtype, as --dtype spells it ("fp32" or "bf16")."""
        return DTYPE_NAMES[self.embedding.lm.get_input_embeddings().weight.dtype]

    @property
    def device(self) -> torch.device:
        return self.embedding.lm.get_input_embeddings().weight.device

    @property
    def tokenizer(self):
        """The Embedding LLM's tokenizer (what chunking should count)."""
        return self.embedding.tokenizer

    @property
    def dimension(self) -> int:
        return self.embedding.hidden_size

    def merge_lora(self) -> "PromptEmbedder":
        """Fold E's LoRA adapter (the LoRA baseline's) into E's weights, for inference: the same vectors
        (to rounding) without each projection's rank-r detour (docs/benchmarks.md). The adapter's own
        weights stay, so saving and the fingerprint are unchanged; training refuses a merged model, since
        its adapter no longer receives gradients. A no-op for a model without one."""
        if self.config.embedding_lora is not None and not self.lora_merged:
            self.embedding.lm.merge_adapter()
        return self

    @property
    def lora_merged(self) -> bool:
        return any(getattr(module, "merged", False) for module in self.embedding.lm.modules())

    def train(self, mode: bool = True):
        self._soft_cache.clear()  # cached prompts are stale once weights can change
        self._fingerprint = None
        return super().train(mode)

    def set_padding_side(self, side: str) -> None:
        """Pad E's batches on the "left" or the "right" (default: the tokenizer's side). The vectors are the
        same either way (positions count real tokens only); the trainer pads right, since left-padded rows
        gave NaN gradients (findings)."""
        if side not in ("left", "right"):
            raise ValueError(f"padding side must be 'left' or 'right', not {side!r}")
        self.embedding.left_pad = side == "left"

    # ----- backbones and their alignments ---------------------------------------------------
    def add_alignment(self, backbone: str, state: dict[str, torch.Tensor]) -> None:
        """Keep an alignment (state dict) to another Embedding LLM, saved with the model; replaces an earlier one."""
        if backbone == self.embedding.name:
            raise ValueError(f"'{backbone}' is the active backbone: its alignment is self.alignment")
        self.extra_alignments[backbone] = {k: v.detach().cpu().clone() for k, v in state.items()}

    def set_embedding(self, embedding: EmbeddingLLM, alignment: Alignment) -> None:
        """Run on another Embedding LLM through its new alignment. The current alignment is kept
        (add_alignment); one kept earlier for the new backbone is dropped, since the new one replaces it."""
        previous = self.embedding.name, self.alignment.state_dict()
        self.extra_alignments.pop(embedding.name, None)
        self.embedding, self.alignment = embedding, alignment
        self.config.embedding_backbone = embedding.name
        self.add_alignment(*previous)
        self._soft_cache.clear()
        self._fingerprint = None

    # ----- the relaxation temperature -------------------------------------------------------
    @property
    def gumbel_tau(self) -> float:
        """The temperature P generates at now: the config's (what a checkpoint saves) unless set otherwise."""
        return self._gumbel_tau

    def set_gumbel_tau(self, tau: float) -> None:
        """Generate at tau from now on (the trainer anneals it); the config's, which is saved, stays."""
        self._gumbel_tau = tau
        self._soft_cache.clear()  # prompts cached at the old temperature are stale

    @contextlib.contextmanager
    def at_gumbel_tau(self, tau: float):
        """Generate at tau inside the block (e.g. the config's, as a reloaded checkpoint would), then as before."""
        previous = self._gumbel_tau
        self.set_gumbel_tau(tau)
        try:
            yield self
        finally:
            self.set_gumbel_tau(previous)

    # ----- the forward pass -----------------------------------------------------------------
    def generate_soft_tokens(self, instructions: Sequence[str]) -> torch.Tensor:
        """P's (N, K, d_P) soft token vectors, before the alignment: one batched relaxed generation at gumbel_tau."""
        return self.prompter.generate(instructions, self._gumbel_tau)

    def soft_prompts(self, instructions: Sequence[str]) -> dict[str, SoftPrompt | None]:
        """Aligned soft prompts by instruction from one batched pass of P (None in text mode), never cached:
        a training step's two sides in one pass."""
        if self.prompter is None:
            return dict.fromkeys(instructions)
        unique = list(dict.fromkeys(instructions))
        return dict(zip(unique, self.alignment(self.generate_soft_tokens(unique)).rows()))

    def soft_prompt(self, instruction: str) -> SoftPrompt | None:
        """One instruction's soft prompt; cached at inference. Generated alone: padding in a batch changes the
        float rounding, and a cached prompt must not depend on what shared its batch."""
        cacheable = not self.training and not torch.is_grad_enabled()
        if cacheable and instruction in self._soft_cache:
            return self._soft_cache[instruction]
        soft = self.soft_prompts([instruction])[instruction]
        if cacheable and soft is not None:
            self._soft_cache[instruction] = soft
        return soft

    def embed(self, token_lists: Sequence[Sequence[int]], soft: SoftPrompt | None,
              cached_text: bool = False) -> torch.Tensor:
        """Pooled embeddings (B, d_E) of tokenized texts under a soft prompt (None in text mode).

        cached_text: suffix placement only; run the text without autograd, then the soft tokens.
        """
        if cached_text and soft is not None and self.config.placement == "suffix":
            return self.embedding.forward_suffix_cached(token_lists, soft)
        return self.embedding(token_lists, soft)

    def tokenize(self, texts: Sequence[str], instruction: str) -> list[list[int]]:
        if self.config.text_mode and instruction:
            texts = [self.config.text_template.format(instruction=instruction, text=t) for t in texts]
        room = self.config.max_length - (0 if self.config.text_mode else self.config.num_soft_tokens)
        return self.tokenizer(list(texts), truncation=True, max_length=room)["input_ids"]

    def forward(self, token_lists: Sequence[Sequence[int]], instruction: str, cached_text: bool = False):
        """Pooled embeddings (B, d_E), differentiable through A and P (see embed for cached_text)."""
        return self.embed(token_lists, self.soft_prompt(instruction), cached_text)

    # ----- encode ---------------------------------------------------------------------------
    def encode(self, texts: str | Sequence[str], instruction: str | None = None, batch_size: int = 32,
               normalize_embeddings: bool = True, show_progress_bar: bool | None = None,
               convert_to_numpy: bool = True):
        """Embed queries (or any text) under an instruction (default: the config's query one)."""
        instruction = self.config.query_instruction if instruction is None else instruction
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
        vectors = self._encode(texts, instruction, batch_size, normalize_embeddings, show_progress_bar)
        if convert_to_numpy:
            vectors = vectors.numpy()
        return vectors[0] if single else vectors

    def encode_document(self, texts: str | Sequence[str], instruction: str | None = None, batch_size: int = 32,
                        normalize_embeddings: bool = True, show_progress_bar: bool | None = None,
                        convert_to_numpy: bool = True):
        """Embed documents under a document-side instruction (default: the config's).

        In text mode documents are embedded as plain text unless an instruction is given.
        """
        if instruction is None:
            instruction = "" if self.config.text_mode else self.config.document_instruction
        return self.encode(texts, instruction, batch_size, normalize_embeddings, show_progress_bar,
                           convert_to_numpy)

    @torch.inference_mode()
    def encode_document_many(self, texts: Sequence[str], instructions: Sequence[str], batch_size: int = 32,
                             normalize_embeddings: bool = True, show_progress_bar: bool | None = None) -> list:
        """Documents embedded under several document-side instructions: one numpy array per instruction.

        With suffix soft tokens the text comes first and never sees them, so each batch's text pass (its KV
        cache) is computed once and every instruction adds only its K soft positions; other layouts encode
        once per instruction. Vectors equal encode_document's to float rounding (two passes, not one)."""
        texts, instructions = list(texts), list(instructions)
        if self.prompter is None or self.config.placement != "suffix" or len(instructions) < 2:
            return [self.encode_document(texts, i, batch_size, normalize_embeddings, show_progress_bar)
                    for i in instructions]
        if self.training:
            self.eval()
        out = [torch.empty((len(texts), self.dimension), dtype=torch.float32) for _ in instructions]
        soft = [self.soft_prompt(i) for i in instructions]
        token_lists = self.tokenize(texts, instructions[0])  # suffix: the text's tokens whatever the instruction
        order = sorted(range(len(texts)), key=lambda i: -len(token_lists[i]))
        if show_progress_bar is None:
            show_progress_bar = sys.stderr.isatty() and len(texts) > 4 * batch_size
        for start in tqdm(range(0, len(order), batch_size), desc="encode", unit="batch",
                          disable=not show_progress_bar):
            rows = order[start:start + batch_size]
            text = self.embedding.text_pass([token_lists[i] for i in rows])
            for j, prompt in enumerate(soft):
                vectors = self.embedding.soft_pass(text, prompt, keep_text=j < len(soft) - 1).float()
                out[j][rows] = (F.normalize(vectors, dim=-1) if normalize_embeddings else vectors).cpu()
        return [vectors.numpy() for vectors in out]

    @torch.inference_mode()
    def _encode(self, texts: list[str], instruction: str, batch_size: int, normalize: bool,
                show_progress_bar: bool | None) -> torch.Tensor:
        if self.training:
            self.eval()
        out = torch.empty((len(texts), self.dimension), dtype=torch.float32)
        if not texts:
            return out
        token_lists = self.tokenize(texts, instruction)
        order = sorted(range(len(texts)), key=lambda i: -len(token_lists[i]))  # batch by length
        if show_progress_bar is None:
            show_progress_bar = sys.stderr.isatty() and len(texts) > 4 * batch_size
        for start in tqdm(range(0, len(order), batch_size), desc="encode", unit="batch",
                          disable=not show_progress_bar):
            rows = order[start:start + batch_size]
            vectors = self.forward([token_lists[i] for i in rows], instruction).float()
            if normalize:
                vectors = F.normalize(vectors, dim=-1)
            out[rows] = vectors.cpu()
        return out

    # ----- persistence ----------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        return save_checkpoint(self, Path(directory))

    @property
    def fingerprint(self) -> str:
        """Identifies what produced a vector: config, the backbones' exact weights, every trained weight."""
        if self._fingerprint is None:
            config = asdict(self.config)
            for bookkeeping in ("aligned_backbones", "cpu_backbone"):  # other backbones do not change these vectors
                config.pop(bookkeeping)
            config["embedding_backbone"] = self.embedding.name
            if self.dtype_name != "fp32":  # fp32 fingerprints stay as they were before dtypes existed
                # bf16 and fp32 vectors agree to cosine >= 0.999, but not bit for bit: an index never mixes them
                config["dtype"] = self.dtype_name
            config["weights"] = [get_backbone(self.embedding.name).weights_id()]
            if self.config.prompting_backbone:
                config["weights"].append(get_backbone(self.config.prompting_backbone).weights_id())
            digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
            for group, tensors in sorted(trained_state(self).items()):
                if group.startswith("alignment-") and group != f"alignment-{self.embedding.name}":
                    continue
                for key in sorted(tensors):
                    digest.update(f"{group}/{key}".encode())
                    digest.update(tensors[key].detach().float().cpu().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device asked for, else CUDA when present, else the CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
DTYPE_NAMES = {value: name for name, value in DTYPES.items()}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX). Elsewhere bf16 is emulated and
    slower than fp32, so "auto" stays fp32 there."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch's own cpuinfo (torch.cpu)
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """"auto" (or None): bf16 on CUDA and on a CPU with native bf16, fp32 elsewhere; else as named.

    PROMPTEMBEDDER_DTYPE sets what "auto" means for a whole process (e.g. fp32 for reference runs)."""
    dtype = dtype or "auto"
    if dtype == "auto":
        dtype = os.environ.get("PROMPTEMBEDDER_DTYPE", "auto") or "auto"
    if dtype == "auto":
        native = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
        return torch.bfloat16 if native else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, not {dtype!r}")
    return DTYPES[dtype]


def new_alignment(prompter: PromptingLLM, embedding: EmbeddingLLM, seed: int = 0, deep_rank: int = 0) -> Alignment:
    """A freshly initialised alignment from P into E, scale-matched to E's token embeddings."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = embedding.lm.config.num_hidden_layers
        alignment = Alignment(prompter.hidden_size, embedding.hidden_size, embedding.token_embedding_norm(),
                              deep_rank, layers)
    return alignment.to(embedding.lm.get_input_embeddings().weight.device)


