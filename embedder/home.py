"""Where PromptEmbedder keeps its state: one home directory for everything.

PROMPTEMBEDDER_HOME overrides the default (the user's data directory). The backbone cache can be
moved on its own with PROMPTEMBEDDER_CACHE, e.g. to a bigger disk.
"""
from __future__ import annotations

import os
from pathlib import Path

# what the home holds (indexed text, uploads, models) is the user's own: folders it creates are 0700
PRIVATE_DIR = 0o700


def home() -> Path:
    env = os.environ.get("PROMPTEMBEDDER_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        path = _user_data_dir()
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def subdir(name: str) -> Path:
    path = home() / name
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def backbone_cache() -> Path:
    env = os.environ.get("PROMPTEMBEDDER_CACHE")
    path = Path(env).expanduser() if env else home() / "backbones"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _user_data_dir() -> Path:
    try:
        from platformdirs import user_data_dir
    except ImportError:  # the model must import with torch and transformers alone
        return Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")).expanduser() / "promptembedder"
    return Path(user_data_dir("promptembedder", appauthor=False))
