"""The network: presets, weights and checkpoints, class rows, device and precision, the predictor.

Importing this package imports nothing; `weight_files` and `keys` are torch-free, the rest need
torch."""
