"""What a training run needs beyond the model and data: resume, checkpoints, run folders, console, logging."""
