"""What the server holds: a service Session (active model, loaded models, the store) plus the folder roots
a browser may index from and the background jobs.

Only wiring: searching and reading collections are app.services' functions.
"""
from __future__ import annotations

from pathlib import Path

from app.services import search as searching
from app.services.models import ModelChoice
from app.services.session import Session
from embedder.home import subdir
from indexer.collection import Hit, check_collection_name

from .jobs import Jobs

__all__ = ["AppState", "ModelChoice"]


class AppState(Session):
    def __init__(self, roots: list[Path], model_choice: ModelChoice, model_note: str = "",
                 demo_collection: str | None = None, jobs: Jobs | None = None):
        super().__init__(model_choice, model_note)
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.demo_collection = demo_collection
        self.jobs = jobs or Jobs()

    # ----- collections, through the active model -------------------------------------------------
    def collection_names(self) -> list[str]:
        return self.store.names()

    def instructions(self, collection: str, model=None) -> list[str]:
        """Query instructions the collection has an index for, with this model (newest first)."""
        if not collection:
            return []
        try:
            return searching.indexed_instructions(self.store, collection, (model or self.model()).fingerprint)
        except Exception:
            return []

    def search(self, collection: str, query: str, k: int, instruction: str | None = None,
               filters: list[str] = (), model=None, **options) -> list[Hit]:
        """Hits from the collection's index for the model; a custom instruction embeds only the query.
        options: Collection.search's (mode, keyword_weight, offset, group)."""
        found = searching.search(self.store, collection, query, model or self.model(), query_instruction=instruction or "",
                                 k=k, filters=filters, model_label=self.model_choice.label, **options)
        return found.hits

    def metadata_keys(self, collection: str) -> dict[str, list[str]]:
        """The filter keys a collection's documents have, with their values where there are few."""
        with searching.open_read_only(self.store, collection, self.model()) as opened:
            return opened.metadata_keys() or {}

    def document_text(self, collection: str, path: str) -> str:
        with searching.open_read_only(self.store, collection, self.model()) as opened:
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
        path = subdir("uploads") / check_collection_name(collection)
        path.mkdir(parents=True, exist_ok=True)
        return path
