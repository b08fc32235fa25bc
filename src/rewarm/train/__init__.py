"""The training engine: the loop (`trainer`), one optimizer step (`step`), AdamW
parameter groups (`optim`), process groups and wrapping (`distributed`), and the
metrics log with its progress bar (`records`)."""
