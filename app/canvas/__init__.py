"""The canvas: the shown image and its instances, the editing tools, rendering and the view
cache."""
