"""The project: its database, images, instances, categories, model versions and review queue.
Torch-free."""
