"""Training-time code: data balancing, hard-negative mining and the training loop."""
