"""Before Qt starts on Linux/xcb, missing system libraries are named with the one command
that installs them, instead of Qt's abort (a fake library finder stands in for the system)."""

from __future__ import annotations

import sys

import pytest

import main
from app import platform_check
from app.platform_check import XCB_LIBRARIES, check


def finder(*missing: str):
    """A library finder that finds everything but `missing` and records what it was asked."""
    asked: list[str] = []

    def find(soname: str) -> bool:
        asked.append(soname)
        return soname not in missing

    find.asked = asked  # type: ignore[attr-defined]
    return find


def test_missing_xcb_libraries_are_named_with_the_one_command_that_installs_them():
    find = finder("libxcb-cursor.so.0", "libEGL.so.1")
    message = check(environ={"DISPLAY": ":0"}, platform="linux", find=find)
    first, command = message.splitlines()
    assert first.startswith("error: ") and "libxcb-cursor.so.0, libEGL.so.1" in first
    assert command.split("apt-get install -y ")[1].split() == ["libxcb-cursor0", "libegl1"]
    assert set(find.asked) == set(XCB_LIBRARIES)  # every library is checked, in one go


def test_nothing_is_said_when_every_library_is_there_or_xcb_is_not_used():
    assert check(environ={}, platform="linux", find=finder()) is None
    missing = finder("libGL.so.1")
    for environ, platform in (({"QT_QPA_PLATFORM": "offscreen"}, "linux"),
                              ({"QT_QPA_PLATFORM": "wayland"}, "linux"),
                              ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"},
                               "linux"),
                              ({}, "darwin"), ({}, "win32")):
        assert check(environ=environ, platform=platform, find=missing) is None
    assert missing.asked == []
    assert check(environ={"QT_QPA_PLATFORM": "xcb"}, platform="linux", find=missing)


def test_the_command_installs_as_root_or_with_sudo():
    assert platform_check.install_command(["libGL.so.1"], as_root=True) == \
        "apt-get install -y libgl1"
    assert platform_check.install_command(["libGL.so.1"], as_root=False) == \
        "sudo apt-get install -y libgl1"


def test_main_says_so_and_exits_non_zero_before_qt_starts(monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform_check, "can_load", finder("libxcb-icccm.so.4"))
    monkeypatch.setattr(main, "create_window",
                        lambda *_a: pytest.fail("Qt must not start"))
    assert main.main([]) != 0
    err = capsys.readouterr().err
    assert "libxcb-icccm.so.4" in err and "apt-get install -y libxcb-icccm4" in err


def test_the_real_finder_asks_the_dynamic_loader():
    assert platform_check.can_load("libc.so.6")
    assert not platform_check.can_load("libno-such-library-mrcnn.so.9")
