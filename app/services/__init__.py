"""The application's operations, shared by the CLI (app/commands) and the UI (app/ui): searching, indexing,
training, aligning, swapping backbones, evaluating on a collection. Each is a plain function over the
library packages (embedder, indexer, training); the callers parse arguments and render results.

Long operations report through a `progress.Reporter` (the UI's job context; the CLI's is silent).
"""
