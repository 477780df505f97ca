"""A seeded random sample of a BEIR corpus.jsonl, as a harder dev corpus (`dev-score --dev-corpus TASK=OUT`):
the dev claims then search their own candidates among N unrelated abstracts, closer to a test set's search
over a whole corpus than the candidates alone, at a bounded CPU cost.

    python scripts/default-model/sample-corpus.py ../shared/data/scifact/corpus.jsonl 1000 OUT.jsonl [--seed 0]
"""
import argparse
import random


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="a BEIR corpus.jsonl")
    parser.add_argument("count", type=int, help="documents to keep")
    parser.add_argument("output", help="the sample, in the same format")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    sample = random.Random(args.seed).sample(lines, min(args.count, len(lines)))
    with open(args.output, "w", encoding="utf-8") as f:
        f.writelines(sample)
    print(f"{len(sample)} of {len(lines)} documents written to {args.output}")


if __name__ == "__main__":
    main()
