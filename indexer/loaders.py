"""Files -> records of text with metadata, and a per-file problem for every file that cannot be read.

One file gives one or more records: a text/Markdown/HTML file one, a PDF one per page, a JSON/JSONL/CSV
file one per object or row. A file that fails gets a `Problem` with a message the user can act on; it
never stops the other files.
"""
from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst", ".log"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
JSON_SUFFIXES = {".json"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv", ".tsv"}
PDF_SUFFIXES = {".pdf"}
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class LoaderOptions:
    text_field: str = "text"  # JSON/JSONL: the field to embed; the other fields become metadata
    title_field: str = "title"  # JSON/JSONL/CSV: the field used as the record's title when present
    csv_columns: list[str] | None = None  # CSV: columns to embed (default: "text" if present, else all)
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES


@dataclass
class TextRecord:
    text: str
    title: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{printable(self.path)}: {self.message}"


def printable(text: str) -> str:
    """Text safe to print to a terminal: control characters (an ANSI escape in a file name) shown as '?',
    one for one, so character offsets stay valid."""
    return "".join(c if c.isprintable() else "?" for c in text)


@dataclass
class LoadedFile:
    path: str  # absolute
    content_hash: str
    mtime: float
    size: int
    records: list[TextRecord]
    metadata: dict  # file-level: name, ext, modified
    problems: list[Problem] = field(default_factory=list)  # per-line/row problems in a file that loaded


class FileProblem(Exception):
    """Raised by a reader: the message goes into the summary as this file's problem."""


def walk(paths: list[str | os.PathLike]) -> tuple[list[Path], list[Problem]]:
    """Every regular file under the given files and directories (hidden ones skipped), sorted, absolute.

    Links are resolved, and a file is taken only when what it resolves to is a regular file inside the
    folder given: a link out of the folder, a link loop, a FIFO or a device is a problem, not a file."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            problems.append(Problem(str(raw), "not found"))
        elif path.is_dir():
            folder = path.resolve()
            for root, dirs, names in os.walk(path, onerror=lambda e: problems.append(Problem(e.filename, _os_message(e)))):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(n for n in names if not n.startswith(".")):
                    _take(Path(root, name), folder, files, problems)
        else:
            _take(path, None, files, problems)
    return sorted(set(files)), problems


def _take(path: Path, folder: Path | None, files: list[Path], problems: list[Problem]) -> None:
    """Add path's resolved target to files when it is a regular file (inside folder, when given)."""
    try:
        target = path.resolve(strict=True)
        mode = target.stat().st_mode
    except RuntimeError:  # Python < 3.13 reports a link loop this way
        problems.append(Problem(str(path), "a symbolic link loop"))
        return
    except OSError as exc:
        problems.append(Problem(str(path), "a symbolic link loop" if exc.errno == errno.ELOOP else _os_message(exc)))
        return
    if folder is not None and not target.is_relative_to(folder):
        problems.append(Problem(str(path), f"a link to {target}, outside the folder being indexed; skipped"))
    elif not stat.S_ISREG(mode):
        problems.append(Problem(str(path), "not a regular file (a FIFO, socket or device); skipped"))
    else:
        files.append(target)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_file(path: Path, options: LoaderOptions) -> LoadedFile:
    """Load one file; raises FileProblem with a clear message when it cannot be indexed."""
    too_large = f"too large (over the {options.max_file_bytes / 2**20:.0f} MiB limit; raise it with --max-file-mb)"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero never ends
            raise FileProblem("not a regular file (a FIFO, socket or device)")
        with path.open("rb") as f:
            data = f.read(options.max_file_bytes + 1)  # bounded, whatever the size the file claims
    except OSError as exc:
        raise FileProblem(_os_message(exc)) from None
    if len(data) > options.max_file_bytes:
        raise FileProblem(too_large)
    if not data.strip():
        raise FileProblem("empty file")
    suffix = path.suffix.lower()
    problems: list[Problem] = []
    if suffix in PDF_SUFFIXES:
        records = read_pdf(data)
    else:
        text = decode_text(data)
        if suffix in HTML_SUFFIXES:
            records = [read_html(text)]
        elif suffix in JSON_SUFFIXES:
            records = read_json(text, options, problems, str(path))
        elif suffix in JSONL_SUFFIXES:
            records = read_jsonl(text, options, problems, str(path))
        elif suffix in CSV_SUFFIXES:
            records = read_csv(text, "\t" if suffix == ".tsv" else ",", options, problems, str(path))
        else:
            records = [TextRecord(text, title=_text_title(text, suffix))]
    records = [r for r in records if r.text.strip()]
    if not records:
        raise FileProblem("no text to index" + (f" ({problems[0].message})" if problems else ""))
    for record in records:
        record.title = record.title or path.stem
    modified = datetime.fromtimestamp(info.st_mtime, timezone.utc).isoformat(timespec="seconds")
    metadata = {"name": path.name, "ext": suffix, "modified": modified}
    return LoadedFile(str(path), file_hash(data), info.st_mtime, info.st_size, records, metadata, problems)


def decode_text(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise FileProblem("binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FileProblem(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}, line {line}); "
                          "convert it to UTF-8 to index it") from None


def _text_title(text: str, suffix: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if suffix in {".md", ".markdown"} and line.startswith("#"):
            return line.lstrip("#").strip()[:200]
        return line[:200] if suffix in {".md", ".markdown"} else ""
    return ""


def read_html(text: str) -> TextRecord:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if not title and (h1 := soup.find("h1")):
        title = h1.get_text(" ", strip=True)
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return TextRecord("\n".join(line for line in lines if line), title=title[:200])


def read_pdf(data: bytes) -> list[TextRecord]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileProblem("encrypted PDF; decrypt it to index it")
        title = ""
        if reader.metadata and reader.metadata.title:
            title = str(reader.metadata.title)[:200]
        return [TextRecord(page.extract_text() or "", title=title, metadata={"page": number})
                for number, page in enumerate(reader.pages, start=1)]
    except FileProblem:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FileProblem(f"unreadable PDF ({type(exc).__name__}: {exc})") from None


def _object_record(obj, options: LoaderOptions) -> TextRecord:
    if not isinstance(obj, dict):
        if isinstance(obj, str):
            return TextRecord(obj)
        raise ValueError(f"expected an object with a '{options.text_field}' field, got {type(obj).__name__}")
    if options.text_field not in obj:
        raise ValueError(f"no '{options.text_field}' field (fields: {', '.join(list(obj)[:10])}); "
                         "choose one with --text-field")
    text = obj[options.text_field]
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False)
    metadata = {k: v for k, v in obj.items() if k != options.text_field}
    title = metadata.get(options.title_field)
    return TextRecord(text, title=str(title)[:200] if title is not None else "", metadata=metadata)


def read_json(text: str, options: LoaderOptions, problems: list[Problem], path: str) -> list[TextRecord]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileProblem(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    items = data if isinstance(data, list) else [data]
    records = []
    for number, item in enumerate(items):
        try:
            records.append(_object_record(item, options))
        except ValueError as exc:
            problems.append(Problem(path, f"item {number}: {exc}"))
    for position, record in enumerate(records):
        record.metadata.setdefault("record", position)
    return records


def read_jsonl(text: str, options: LoaderOptions, problems: list[Problem], path: str) -> list[TextRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_object_record(json.loads(line), options))
        except json.JSONDecodeError as exc:
            problems.append(Problem(path, f"line {number}: invalid JSON ({exc.msg}), skipped"))
        except ValueError as exc:
            problems.append(Problem(path, f"line {number}: {exc}, skipped"))
        else:
            records[-1].metadata.setdefault("line", number)
    return records


def read_csv(text: str, delimiter: str, options: LoaderOptions, problems: list[Problem], path: str) -> list[TextRecord]:
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise FileProblem(f"invalid CSV: {exc}") from None
    if not rows:
        raise FileProblem("CSV with a header but no rows")
    header = [h for h in rows[0].keys() if h is not None]
    if options.csv_columns:
        missing = [c for c in options.csv_columns if c not in header]
        if missing:
            raise FileProblem(f"no column(s) {', '.join(missing)} (columns: {', '.join(header)})")
        columns = options.csv_columns
    else:
        columns = [options.text_field] if options.text_field in header else header
    records = []
    for number, row in enumerate(rows, start=2):
        if None in row:
            problems.append(Problem(path, f"row {number}: more fields than the header, extra ones ignored"))
        values = [(c, (row.get(c) or "").strip()) for c in columns]
        if len(columns) == 1:
            text = values[0][1]
        else:
            text = "\n".join(f"{c}: {v}" for c, v in values if v)
        metadata = {k: v for k, v in row.items() if k is not None and k not in columns}
        metadata["row"] = number
        title = row.get(options.title_field) or ""
        records.append(TextRecord(text, title=title[:200], metadata=metadata))
    return records


def _os_message(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "cannot read: permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    return f"cannot read: {exc.strerror or exc}"


def iter_loaded(files: list[Path], options: LoaderOptions) -> Iterator[LoadedFile | Problem]:
    for path in files:
        try:
            yield read_file(path, options)
        except FileProblem as exc:
            yield Problem(str(path), str(exc))
