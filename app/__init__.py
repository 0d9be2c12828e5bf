"""Mask R-CNN Studio's Qt window. Holds no domain logic: it calls `mrcnn` and shows results."""
