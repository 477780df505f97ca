"""What the server holds: the active model, the collection store, the folder roots, the jobs.

Only wiring: models come from `embedder`, collections and search from `indexer`, training from
`training`. The active model (name + backbone) is remembered under home()/ui-state.json, so a
swap or a newly trained model stays active after a restart.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .jobs import Jobs


@dataclass
class ModelChoice:
    name: str | None  # what PromptEmbedder.from_pretrained takes (None: the shipped default)
    backbone: str | None = None

    @property
    def label(self) -> str:
        name = self.name or "default model"
        if os.sep in name:  # a checkpoint directory: its folder name says enough
            name = Path(name).name
        return f"{name} @ {self.backbone}" if self.backbone else name

    def as_dict(self) -> dict:
        return {"name": self.name, "backbone": self.backbone}


class QueryInstruction:
    """A model whose queries use a custom instruction; documents, fingerprint and all else are the model's.

    Lets a search use any query instruction against an index built for another one: the documents
    were embedded under the document-side instruction, which the query instruction does not change.
    """

    def __init__(self, model, instruction: str):
        self._model, self._instruction = model, instruction

    def encode(self, texts, instruction=None, **kwargs):
        return self._model.encode(texts, instruction=self._instruction, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


@dataclass
class AppState:
    roots: list[Path]
    model_choice: ModelChoice
    model_note: str = ""
    demo_collection: str | None = None
    jobs: Jobs = field(default_factory=Jobs)
    _models: dict = field(default_factory=dict)
    _model_lock: threading.Lock = field(default_factory=threading.Lock)
    _store_lock: threading.Lock = field(default_factory=threading.Lock)
    _store = None

    def __post_init__(self):
        self.roots = [Path(r).expanduser().resolve() for r in self.roots]

    # ----- persistence of the active model -----------------------------------------------------
    @staticmethod
    def state_file() -> Path:
        from embedder.home import home

        return home() / "ui-state.json"

    @classmethod
    def saved_choice(cls) -> ModelChoice | None:
        try:
            data = json.loads(cls.state_file().read_text())
            return ModelChoice(data["active"]["name"], data["active"].get("backbone"))
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

    def previous_choice(self) -> ModelChoice | None:
        try:
            data = json.loads(self.state_file().read_text())["previous"]
            return ModelChoice(data["name"], data.get("backbone"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ----- models and the store ----------------------------------------------------------------
    def model(self, choice: ModelChoice | None = None):
        """The loaded model for a choice (default: the active one), loaded once and kept."""
        from embedder import PromptEmbedder

        choice = choice or self.model_choice
        key = (choice.name, choice.backbone)
        with self._model_lock:
            if key not in self._models:
                self._models[key] = PromptEmbedder.from_pretrained(choice.name, backbone=choice.backbone)
            return self._models[key]

    def loaded_model(self):
        """The active model if it is loaded already, else None (never waits for a load)."""
        return self._models.get((self.model_choice.name, self.model_choice.backbone))

    def forget_model(self, choice: ModelChoice) -> None:
        with self._model_lock:
            self._models.pop((choice.name, choice.backbone), None)

    @property
    def store(self):
        with self._store_lock:  # the page load, the search tab and the timer all ask at once on a first visit
            if self._store is None:
                from indexer.collection import Store

                self._store = Store()
        return self._store

    def collection_names(self) -> list[str]:
        return self.store.names()

    def instructions(self, collection: str, model=None) -> list[str]:
        """Query instructions the collection has an index for, with this model (newest first)."""
        if not collection:
            return []
        model = model or self.model()
        try:
            indexes = self.store.indexes(collection)
        except Exception:
            return []
        seen = []
        for ix in indexes:
            if ix.fingerprint == model.fingerprint and ix.instruction not in seen:
                seen.append(ix.instruction)
        return seen

    def search(self, collection: str, query: str, k: int, instruction: str | None = None,
               filters: list[str] = (), model=None, **options) -> list:
        """Hits from the collection's index for the model; a custom instruction embeds only the query.
        options: Collection.search's (mode, keyword_weight, offset, group)."""
        model = model or self.model()
        indexed = self.instructions(collection, model)
        if not indexed:
            from indexer.errors import IndexerError

            raise IndexerError(f"collection '{collection}' has no index for the model {self.model_choice.label} "
                               "yet; index it in the Collections tab (or wait for the running indexing job)")
        base = instruction if instruction in indexed else indexed[0]
        searcher_model = model if instruction in (None, "", base) else QueryInstruction(model, instruction)
        collection_ = self.store.open(collection, searcher_model, instruction=base, writable=False, progress=False)
        try:
            return collection_.search(query, k=k, filters=list(filters), **options)
        finally:
            collection_.close()

    def _read_only(self, collection: str):
        model = self.model()
        indexed = self.instructions(collection, model)
        return self.store.open(collection, model, instruction=indexed[0] if indexed else None, writable=False,
                               progress=False)

    def metadata_keys(self, collection: str) -> dict[str, list[str]]:
        """The filter keys a collection's documents have, with their values where there are few."""
        with self._read_only(collection) as opened:
            return opened.metadata_keys() or {}

    def document_text(self, collection: str, path: str) -> str:
        with self._read_only(collection) as opened:
            return opened.document_text(path)

    # ----- the roots a browser may index from ---------------------------------------------------
    def check_inside_roots(self, given: str | Path) -> Path:
        """The resolved path, if it lies inside one of the roots; else PermissionError (checked before
        existence, so the message never tells whether a path outside the roots exists)."""
        path = Path(str(given).strip()).expanduser()
        if not path.is_absolute():
            path = (self.roots[0] if self.roots else Path.cwd()) / path
        path = path.resolve()
        if not any(path == root or root in path.parents for root in self.roots):
            allowed = ", ".join(str(r) for r in self.roots) or "none"
            raise PermissionError(f"{path} is outside the folders this server may read ({allowed}); "
                                  "restart it with --root to allow another folder")
        return path

    def check_folder(self, folder: str) -> Path:
        """A folder the server may index: it must exist and lie inside one of the configured roots."""
        if not folder or not folder.strip():
            raise ValueError("enter a folder path on the server to index")
        path = self.check_inside_roots(folder)
        root = next(r for r in self.roots if path == r or r in path.parents)
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            raise PermissionError(f"{path} is a hidden folder (or inside one); hidden folders are never indexed")
        if not path.exists():
            raise FileNotFoundError(f"folder not found: {path}")
        if not path.is_dir():
            raise NotADirectoryError(f"{path} is a file, not a folder; upload files instead")
        return path

    def uploads_dir(self, collection: str) -> Path:
        from embedder.home import subdir

        from indexer.collection import check_collection_name

        path = subdir("uploads") / check_collection_name(collection)
        path.mkdir(parents=True, exist_ok=True)
        return path
