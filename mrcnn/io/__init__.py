"""Files and bytes: image reading, atomic writes, downloads, images under a URL and their
local cache. Torch-free."""
