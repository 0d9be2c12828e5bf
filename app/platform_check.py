"""Before Qt starts: are the system libraries of Qt's xcb platform there?

On Linux, Qt's xcb plugin (the X11 window) loads system libraries that pip cannot install;
without one of them Qt aborts with its own long message. `main.py` asks here first and, when
some are missing, prints one line naming them and the one command that installs them.
Imports no Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

#: The system libraries Qt's xcb plugin (PySide6 6.x) and Qt GUI load, and the Debian/Ubuntu
#: package of each (Ubuntu 24.04's renamed packages still answer to these names).
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def can_load(soname: str) -> bool:
    """Whether the dynamic loader finds `soname`, as Qt's plugin will ask it to."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(environ: Mapping[str, str], platform: str) -> bool:
    """Whether Qt will open its window with the xcb plugin: on Linux, when QT_QPA_PLATFORM
    names xcb first, or is not set outside a Wayland session."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"
    wayland = environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY")
    return not wayland


def missing_libraries(find: Callable[[str], bool] = can_load) -> list[str]:
    """The libraries of `XCB_LIBRARIES` that `find` does not find, in that order."""
    return [soname for soname in XCB_LIBRARIES if not find(soname)]


def install_command(sonames: list[str], *, as_root: bool | None = None) -> str:
    """The one command that installs the packages of `sonames` (Debian/Ubuntu)."""
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    packages = list(dict.fromkeys(XCB_LIBRARIES[s] for s in sonames))
    return ("" if as_root else "sudo ") + "apt-get install -y " + " ".join(packages)


def check(environ: Mapping[str, str] | None = None, platform: str | None = None,
          find: Callable[[str], bool] | None = None) -> str | None:
    """None when Qt can start; else what to print: one line naming the missing libraries,
    then the command that installs them."""
    environ = os.environ if environ is None else environ
    if not uses_xcb(environ, platform or sys.platform):
        return None
    missing = missing_libraries(find or can_load)
    if not missing:
        return None
    return (f"error: Qt cannot open a window: missing system "
            f"{'library' if len(missing) == 1 else 'libraries'} {', '.join(missing)} "
            f"(pip cannot install them); on Debian/Ubuntu install them with:\n"
            f"    {install_command(missing)}")
