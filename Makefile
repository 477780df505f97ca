# The two commands of the README. Both set up a fresh clone first (idempotent, quick when done).
.PHONY: demo test test-quick

demo:
	bash scripts/setup.sh
	.venv/bin/promptembedder demo

test:
	bash scripts/setup.sh
	.venv/bin/python -m pytest -q

test-quick:
	bash scripts/setup.sh --no-backbones
	.venv/bin/python -m pytest -q -m "not real and not browser"
