"""The training engine: the loop (`trainer`), one optimizer step (`step`), AdamW
parameter groups (`optim`), process groups and wrapping (`distributed`), seconds per
phase of the loop (`phases`), the progress bar (`progress`) and the TensorBoard mirror of
the run log (`tensorboard`; the log itself is `rewarm.runlog`)."""
