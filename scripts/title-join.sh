#!/usr/bin/env bash
# Which joining of a BEIR document's title and text scores better: "title text" (mteb's) or "title. text" (what
# training used to read). Scores one model on SciFact's train split (never its test split) both ways.
#   scripts/title-join.sh [MODEL] [SCIFACT_DIR]     (default: all-minilm-l6-v2, ../shared/data/scifact)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-all-minilm-l6-v2}
DATA=${2:-../shared/data/scifact}
VARIANT=$(mktemp -d)/scifact-title-period
trap 'rm -rf "$(dirname "$VARIANT")"' EXIT
mkdir -p "$VARIANT" && cp -r "$DATA/qrels" "$DATA/queries.jsonl" "$VARIANT/"
# the same documents with the title folded into the text as "title. text" (title left empty)
.venv/bin/python - "$DATA/corpus.jsonl" "$VARIANT/corpus.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as source, open(sys.argv[2], "w", encoding="utf-8") as target:
    for line in source:
        doc = json.loads(line)
        title, text = doc.get("title") or "", doc.get("text") or ""
        doc["text"], doc["title"] = (f"{title}. {text}".strip(". ") if title else text), ""
        target.write(json.dumps(doc, ensure_ascii=False) + "\n")
PY
for join in "title text:$DATA" "title. text:$VARIANT"; do
    score=$(.venv/bin/promptembedder eval --model "$MODEL" --data "${join#*:}" --split train --json \
        | .venv/bin/python -c "import json,sys; print(json.load(sys.stdin)['scores']['ndcg_at_10'])")
    echo "$MODEL, SciFact train split, \"${join%%:*}\": nDCG@10 $score"
done
