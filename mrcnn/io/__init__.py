"""Files and bytes: image reading, atomic writes, downloads. Torch-free."""
