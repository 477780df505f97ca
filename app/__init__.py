"""The application: the CLI and the Gradio UI. It wires embedder, indexer and training together and
holds no model or index logic of its own."""
