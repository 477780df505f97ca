"""A long-lived user of the library (the UI server): the active model, loaded models, the collection store.

The active model (name + backbone) is remembered under home()/ui-state.json, so a swap or a newly
trained model stays active after a restart.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from embedder import PromptEmbedder
from embedder.home import home
from indexer.collection import Store

from .models import ModelChoice


class Session:
    def __init__(self, model_choice: ModelChoice, model_note: str = ""):
        self.model_choice, self.model_note = model_choice, model_note
        self._models: dict = {}
        self._model_lock = threading.Lock()
        self._store_lock = threading.Lock()
        self._store: Store | None = None

    # ----- the active model, remembered across restarts ----------------------------------------
    @staticmethod
    def state_file() -> Path:
        return home() / "ui-state.json"

    @classmethod
    def saved_choice(cls) -> ModelChoice | None:
        return cls._saved("active")

    def previous_choice(self) -> ModelChoice | None:
        return self._saved("previous")

    @classmethod
    def _saved(cls, which: str) -> ModelChoice | None:
        try:
            data = json.loads(cls.state_file().read_text())[which]
            return ModelChoice(data["name"], data.get("backbone"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def set_active(self, choice: ModelChoice, previous: ModelChoice | None = None) -> None:
        data = {"active": choice.as_dict()}
        if previous is not None:
            data["previous"] = previous.as_dict()
        path = self.state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
        self.model_choice = choice
        self.model_note = ""

    # ----- models and the store ----------------------------------------------------------------
    def model(self, choice: ModelChoice | None = None) -> PromptEmbedder:
        """The loaded model for a choice (default: the active one), loaded once and kept."""
        choice = choice or self.model_choice
        key = (choice.name, choice.backbone)
        with self._model_lock:
            if key not in self._models:
                self._models[key] = PromptEmbedder.from_pretrained(choice.name, backbone=choice.backbone)
            return self._models[key]

    def loaded_model(self) -> PromptEmbedder | None:
        """The active model if it is loaded already, else None (never waits for a load)."""
        return self._models.get((self.model_choice.name, self.model_choice.backbone))

    def forget_model(self, choice: ModelChoice) -> None:
        with self._model_lock:
            self._models.pop((choice.name, choice.backbone), None)

    @property
    def store(self) -> Store:
        with self._store_lock:  # the page load, the search tab and the timer all ask at once on a first visit
            if self._store is None:
                self._store = Store()
        return self._store
