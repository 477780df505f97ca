"""A PromptEmbedder's configuration: what a checkpoint's config.json holds. Torch-free, so model names and
checkpoints can be resolved (`promptembedder models`, --help) without loading torch."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PromptEmbedderConfig:
    embedding_backbone: str = "tiny-llama"
    prompting_backbone: str | None = "tiny-llama"  # None: text mode, the instruction as plain text
    num_soft_tokens: int = 5
    placement: str = "suffix"  # "suffix": [text; S], "prefix": [S; text]
    pooling: str = "last"  # "last" or "mean"
    soft_token_source: str = "hidden"  # hand on P's hidden state h_t, or the mixed embedding e_t
    gumbel_tau: float = 1.0  # relaxation temperature while training (the trainer anneals it)
    straight_through: bool = False  # hard one-hot forward, soft gradient backward
    query_instruction: str = "Retrieve semantically similar text."
    document_instruction: str = "Represent this document for retrieval."
    text_template: str = "Instruct: {instruction}\nQuery: {text}"  # text mode only
    max_length: int = 512
    prompter_weights: str = "base"  # "base" (registry weights), "full" or "lora" (saved in the checkpoint)
    prompter_lora: dict | None = None  # LoRA settings on P when prompter_weights == "lora"
    embedding_lora: dict | None = None  # the LoRA baseline's adapter on E (text mode)
    aligned_backbones: list[str] = field(default_factory=list)  # backbones with a saved alignment
    cpu_backbone: str | None = None  # an aligned backbone to run on when there is no GPU (default: the trained one)
    deep_rank: int = 0  # > 0: the alignment also adds a rank-r projection of P's vectors to E's residual stream at
    #                     the soft positions after every layer (an extension beyond the paper; 0 = the paper's method)

    @property
    def text_mode(self) -> bool:
        return self.prompting_backbone is None

    def validate(self) -> None:
        if self.placement not in ("prefix", "suffix"):
            raise ValueError(f"placement must be 'prefix' or 'suffix', not {self.placement!r}")
        if self.pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', not {self.pooling!r}")
        if self.soft_token_source not in ("hidden", "embedding"):
            raise ValueError(f"soft_token_source must be 'hidden' or 'embedding', not {self.soft_token_source!r}")
        if not self.text_mode and not 1 <= self.num_soft_tokens <= 64:
            raise ValueError("num_soft_tokens must be between 1 and 64")
        if self.deep_rank < 0:
            raise ValueError("deep_rank must be 0 (off) or a positive rank")
