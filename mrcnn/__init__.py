"""Mask R-CNN Studio core: everything that works without Qt.

Project store, image I/O, masks and geometry, COCO I/O and the command line.
"""

__version__ = "0.1.0"
