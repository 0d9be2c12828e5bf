"""Training: the loop and its hooks, data set, distributed, evaluation, and the torch-free launcher
the app uses."""
