"""Checks of a model against references: task metrics on the user's labelled data (metrics,
labelled, scoring, evaluation; torch_model for the PyTorch reference row)."""
