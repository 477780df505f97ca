"""The Gradio web UI: one module per tab, background jobs, the state that wires them."""
