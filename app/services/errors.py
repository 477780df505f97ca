"""Which errors are the user's to read: their message is written for people, shown without a traceback."""
from __future__ import annotations

from embedder.backbones import BackboneError
from indexer.errors import IndexerError
from training.errors import TrainingError

USER_ERRORS: tuple[type[BaseException], ...] = (
    BackboneError, IndexerError, TrainingError, FileNotFoundError, FileExistsError, NotADirectoryError,
    PermissionError, IsADirectoryError, UnicodeDecodeError, ValueError)
