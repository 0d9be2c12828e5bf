"""Canvas tools for correcting masks (brush, eraser, polygon, Box → GrabCut, magic wand).

Each tool turns mouse gestures into one undoable, durable edit of the shown image's
`mrcnn.editing.document.ImageDocument`; the mask work itself is `mrcnn.editing.mask_tools` and,
for the tools that read the image, `mrcnn.editing.image_tools`. Wired into the window by
`app/edit_wiring.py`.
"""
