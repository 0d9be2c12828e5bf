"""The local image cache: files kept under their content hash, read again without the
storage, never more than the bound (least recently used go first), never half written."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time

import numpy as np
import pytest
from PIL import Image

from mrcnn.errors import ImageReadError
from mrcnn.io import cache as cache_module
from mrcnn.io.cache import ImageCache, default_cache, parse_bytes
from mrcnn.io.images import load_image
from mrcnn.io.remote import RemoteImage
from mrcnn.testing.http_folder import FolderServer


def png(seed: int, side: int = 32) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


pytestmark = pytest.mark.usefixtures("image_cache_dir")


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    for i in range(6):
        (folder / f"img{i}.png").write_bytes(png(i))
    with FolderServer(folder) as server:
        yield server


def test_a_fetched_image_is_kept_under_its_content_hash_and_read_without_the_server(
        served, tmp_path):
    cache = ImageCache(tmp_path / "own cache")
    data = (served.folder / "img0.png").read_bytes()
    image = RemoteImage(f"{served.url}/img0.png", sha(data))

    assert image.read_bytes(cache) == data
    assert cache.path(sha(data), ".png").read_bytes() == data
    served.stop()  # the storage is gone: the cached copy still answers
    assert image.read_bytes(cache) == data
    assert image.local_path(cache) == cache.path(sha(data), ".png")
    assert served.file_requests() == ["/img0.png"]  # fetched once


def test_the_cache_stays_within_its_bound_and_drops_the_least_recently_used(tmp_path):
    files = [png(i) for i in range(8)]
    size = max(len(f) for f in files)
    cache = ImageCache(tmp_path / "cache", max_bytes=3 * size)
    for i, data in enumerate(files[:3]):
        path = cache.write(data, ".png")
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))  # 0 oldest
    assert cache.read(sha(files[0]), ".png") == files[0]  # used now: the newest
    for data in files[3:]:
        cache.write(data, ".png")
        assert cache.total_bytes() <= cache.max_bytes
    kept = {e.path.name for e in cache.entries()}
    assert f"{sha(files[-1])}.png" in kept  # the one just written
    assert f"{sha(files[1])}.png" not in kept and f"{sha(files[2])}.png" not in kept
    assert len(kept) <= 3


def test_one_image_larger_than_the_bound_is_still_readable(tmp_path):
    cache = ImageCache(tmp_path / "cache", max_bytes=10)
    data = png(1)
    path = cache.write(data, ".png")
    assert path.read_bytes() == data  # kept for its reader; the next write drops it
    cache.write(png(2), ".png")
    assert not path.exists()


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
    cache = ImageCache(tmp_path / "cache")
    data = png(3)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.os, "replace", broken_replace)
    with pytest.raises(OSError):
        cache.write(data, ".png")
    assert cache.entries() == []  # neither the file nor its temporary copy
    assert cache.read(sha(data), ".png") is None


def test_a_damaged_cached_file_is_fetched_again(served, image_cache_dir):
    cache = ImageCache(image_cache_dir)
    data = (served.folder / "img1.png").read_bytes()
    image = RemoteImage(f"{served.url}/img1.png", sha(data))
    path = image.local_path(cache)
    path.write_bytes(data[:20])  # truncated on disk
    assert load_image(image).shape == (32, 32, 3)  # through the same (default) cache
    assert path.read_bytes() == data
    assert image.read_bytes(cache) == data  # whole again: no third fetch
    assert served.file_requests() == ["/img1.png"] * 2


def test_a_file_changed_on_the_storage_is_refused_not_shown(served, tmp_path):
    cache = ImageCache(tmp_path / "cache")
    old = (served.folder / "img2.png").read_bytes()
    (served.folder / "img2.png").write_bytes(png(99))
    with pytest.raises(ImageReadError, match="changed on the storage"):
        RemoteImage(f"{served.url}/img2.png", sha(old)).read_bytes(cache)
    assert cache.read(sha(old), ".png") is None


def test_stale_temporary_files_are_cleaned_and_fresh_ones_left(tmp_path):
    cache = ImageCache(tmp_path / "cache")
    (tmp_path / "cache" / "ab").mkdir(parents=True)
    stale = tmp_path / "cache" / "ab" / ".x.png.1234.tmp"
    fresh = tmp_path / "cache" / "ab" / ".y.png.5678.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 2 * cache_module.STALE_TEMP_S,) * 2)
    cache.evict()
    assert not stale.exists() and fresh.exists()


def test_the_default_cache_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MRCNN_CACHE", str(tmp_path / "here"))
    monkeypatch.setenv("MRCNN_CACHE_BYTES", "1.5M")
    cache = default_cache()
    assert cache.folder == tmp_path / "here"
    assert cache.max_bytes == int(1.5 * 1024**2)
    monkeypatch.setenv("MRCNN_CACHE_BYTES", "lots")
    assert default_cache().max_bytes == cache_module.DEFAULT_MAX_BYTES
    monkeypatch.delenv("MRCNN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert default_cache().folder == tmp_path / "xdg" / "mrcnn-studio" / "images"


@pytest.mark.parametrize(("text", "value"), [("123", 123), ("2K", 2048), ("1G", 1024**3),
                                             ("3MiB", 3 * 1024**2), ("2gb", 2 * 1024**3)])
def test_sizes_read_as_people_write_them(text, value):
    assert parse_bytes(text) == value
