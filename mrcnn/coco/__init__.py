"""COCO files: validation, import and export. Torch-free."""
