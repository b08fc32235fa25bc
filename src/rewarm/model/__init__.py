"""Models: Llama-style presets, local Hugging Face causal LMs, rewarm checkpoints, export."""
