"""Docks, lists, banners and status-bar widgets: what the window shows around the canvas."""
