"""The command line (`python -m mrcnn ...`): argument parsing and printing only."""
