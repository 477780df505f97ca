"""Tiny random-weight backbones for tests and smoke runs: real architectures, ~30k parameters.

The tokenizer is a byte-level BPE trained in-process on a fixed text, so it is deterministic and
needs no download; the weights are seeded, so every process builds the same model.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only: backbones.py builds tiny models through this module
    from .backbones import Backbone

VOCAB_SIZE = 512
EOS = "<|endoftext|>"
SEED = 1234

_TEXT = (
    "Search is the art of finding the few documents that answer a question among many that do not. "
    "An embedding model turns each text into a vector, and texts that mean the same thing land close "
    "together. Queries and documents are written differently, so each side gets its own instruction. "
    "The index stores the vectors; the database stores the text, its source and its metadata. "
    "When a file changes, only that file is embedded again; when it is deleted, its vectors go too. "
    "Given a scientific claim, retrieve abstracts that support or refute it. "
    "Retrieve semantically similar text. Given a medical question, retrieve the answer. "
    "Represent this document for retrieval. The cat sat on the mat. A dog runs in the park. "
    "Python is a programming language. Search engines index documents and answer queries. "
    "0 1 2 3 4 5 6 7 8 9 . , ; : ! ? ( ) [ ] { } - _ + = / \\ ' \" # $ % & * < > @ ^ ` | ~"
)


@functools.lru_cache(maxsize=None)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    text = _TEXT
    tok.train_from_iterator([text] * 4, trainer=trainer)
    return tok.to_str()


def build_tokenizer(padding_side: str = "right"):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        eos_token=EOS,
        pad_token=EOS,  # like SmolLM2: pad equals EOS, so pooling must go by the attention mask
        padding_side=padding_side,
    )


def _config(backbone: Backbone):
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=VOCAB_SIZE,
        hidden_size=backbone.hidden_size,
        intermediate_size=2 * backbone.hidden_size,
        num_hidden_layers=backbone.layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=0,
        pad_token_id=0,
        bos_token_id=None,
    )
    if backbone.arch == "llama":
        return LlamaConfig(**common)
    if backbone.arch == "qwen2":
        return Qwen2Config(**common)
    if backbone.arch == "gemma3":
        return Gemma3TextConfig(**common, head_dim=8, sliding_window=16)
    raise ValueError(f"no tiny config for architecture {backbone.arch}")


def build_tiny(backbone: Backbone):
    """(model, tokenizer) for a tiny preset; identical in every process."""
    from transformers import AutoModelForCausalLM

    config = _config(backbone)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Gemma pads on the left, the others on the right: the tiny presets keep that difference
    tokenizer = build_tokenizer("left" if backbone.arch == "gemma3" else "right")
    return model, tokenizer
