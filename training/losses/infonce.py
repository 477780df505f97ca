"""InfoNCE with in-batch and hard negatives.

Query i's positive is document i; every other document of the batch (the other positives and all
hard negatives) is a negative for it. Similarities are cosines divided by a temperature, fixed or
learned (kept in [min_temperature, 1] so it cannot collapse to zero and blow up the logits).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class InfoNCE(nn.Module):
    def __init__(self, temperature: float = 0.05, learnable: bool = False, min_temperature: float = 0.01):
        super().__init__()
        if not 0 < temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1], not {temperature}")
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)), requires_grad=learnable)
        self.min_log = math.log(min_temperature)

    @property
    def temperature(self) -> float:
        return self.log_temperature.detach().clamp(self.min_log, 0.0).exp().item()

    def logits(self, queries: torch.Tensor, documents: torch.Tensor) -> torch.Tensor:
        """(B, D) scaled cosine similarities; documents[:B] are the positives, in query order."""
        scale = self.log_temperature.clamp(self.min_log, 0.0).exp()
        return F.normalize(queries.float(), dim=-1) @ F.normalize(documents.float(), dim=-1).T / scale

    def forward(self, queries: torch.Tensor, documents: torch.Tensor) -> torch.Tensor:
        if documents.shape[0] < queries.shape[0]:
            raise ValueError("documents must start with one positive per query")
        labels = torch.arange(queries.shape[0], device=queries.device)
        return F.cross_entropy(self.logits(queries, documents), labels)

    @torch.no_grad()
    def accuracy(self, queries: torch.Tensor, documents: torch.Tensor) -> float:
        """Share of queries whose own positive is the best-scored document of the batch."""
        labels = torch.arange(queries.shape[0], device=queries.device)
        return (self.logits(queries, documents).argmax(-1) == labels).float().mean().item()
