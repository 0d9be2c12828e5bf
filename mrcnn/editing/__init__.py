"""Correcting masks: mask tools, the image document (undo/redo) and its steps. Torch-free."""
