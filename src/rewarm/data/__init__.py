"""Token data: sources, tokenizers, memory-mapped shards, stage mixtures with replay."""
