"""Hyperparameter search with Optuna: the search space, one trial, the study's storage, pruning and the summary."""
