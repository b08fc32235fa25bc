"""Mitigations of forgetting besides replay (SCIENCE.md section 6b; docs/mitigations.md):
weight averaging during training, WSM merge weights, MER (Reptile) steps, merging a
stage's end with its start, and `rewarm merge` of checkpoints or HF models."""
