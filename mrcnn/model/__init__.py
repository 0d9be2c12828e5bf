"""The network: presets, weights and checkpoints, class rows, device and precision, the predictor.

Importing this package imports nothing; `weight_files` is torch-free, the rest need torch."""
