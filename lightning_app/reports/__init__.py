"""The run's figures: recorded by a callback during fit, drawn with matplotlib into the run folder and TensorBoard."""
