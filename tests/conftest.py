"""Every test gets its own PROMPTEMBEDDER_HOME; the converted backbone cache is shared (read-only use)."""
from __future__ import annotations

import os

import pytest

from embedder.home import backbone_cache

_REAL_CACHE = str(backbone_cache())  # resolved once, before any test moves the home


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTEMBEDDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PROMPTEMBEDDER_CACHE", os.environ.get("PROMPTEMBEDDER_CACHE", _REAL_CACHE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return tmp_path / "home"


@pytest.fixture
def require_backbone():
    """Call with a backbone name: skips a real-backbone test, naming the command that makes it runnable."""
    from embedder.backbones import get_backbone

    def require(name: str) -> None:
        status = get_backbone(name).status()
        if status != "ready":
            pytest.skip(f"{name} is {status}; run `promptembedder prepare {name}`")

    return require
