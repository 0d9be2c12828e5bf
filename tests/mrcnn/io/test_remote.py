"""Images under a URL (a local HTTP server, fsspec's in-memory storage): listed, read through
the cache, and every failure a clear, typed message naming the URL and what to do."""

from __future__ import annotations

import importlib.util
import io
import uuid

import fsspec
import numpy as np
import pytest
from PIL import Image

from mrcnn.errors import ImageReadError, MrcnnError, RemoteStorageError
from mrcnn.io.images import load_image, load_thumbnail, verify_image
from mrcnn.io.remote import (
    RemoteImage,
    check_url,
    is_url,
    join_url,
    list_files,
    local_file,
    location_name,
    url_key,
)
from mrcnn.store.scan import find_remote_images
from mrcnn.testing.http_folder import FolderServer


def png(seed: int, shape=(24, 40)) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


pytestmark = pytest.mark.usefixtures("image_cache_dir")


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"
    (folder / "sub dir").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "a.png").write_bytes(png(0))
    (folder / "sub dir" / "b c.png").write_bytes(png(1))
    (folder / ".hidden" / "d.png").write_bytes(png(2))
    (folder / "notes.txt").write_text("not an image")
    with FolderServer(folder) as server:
        yield server


@pytest.fixture
def memory_url():
    """A folder in fsspec's in-memory storage, removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/images-{uuid.uuid4().hex[:8]}"
    fs.pipe(f"{root}/x.png", png(3))
    fs.pipe(f"{root}/deep/y.png", png(4, (10, 12)))
    yield f"memory://{root.lstrip('/')}"
    fs.rm(root, recursive=True)


def test_an_http_folder_lists_its_images_recursively_with_readable_names(served):
    assert list_files(served.url) == sorted([".hidden/d.png", "a.png", "notes.txt",
                                             "sub dir/b c.png"])
    assert find_remote_images(served.url + "/") == ["a.png", "sub dir/b c.png"]
    url = join_url(served.url, "sub dir/b c.png")
    assert url == f"{served.url}/sub%20dir/b%20c.png"
    assert url_key(served.url, url) == "sub dir/b c.png"
    assert location_name(RemoteImage(url)) == "b c.png"
    assert load_image(RemoteImage(url)).shape == (24, 40, 3)
    assert load_thumbnail(RemoteImage(url), 20).shape == (12, 20, 3)
    assert verify_image(RemoteImage(url)).width == 40


def test_memory_storage_reads_like_any_other(memory_url):
    assert find_remote_images(memory_url) == ["deep/y.png", "x.png"]
    info = verify_image(RemoteImage(join_url(memory_url, "deep/y.png")))
    assert (info.width, info.height) == (12, 10)
    assert local_file(RemoteImage(join_url(memory_url, "deep/y.png"), info.sha256)).is_file()
    with pytest.raises(ImageReadError, match="changed on the storage"):
        RemoteImage(join_url(memory_url, "x.png"), "0" * 64).read_bytes()


def test_a_stopped_server_is_a_clear_message_naming_the_url_and_what_to_do(served):
    url = join_url(served.url, "a.png")
    served.stop()
    with pytest.raises(RemoteStorageError) as caught:
        load_image(RemoteImage(url))
    message = str(caught.value)
    assert url in message and "cannot reach" in message
    assert "Check the network connection" in message and "saved" in message
    with pytest.raises(RemoteStorageError, match="cannot reach"):
        find_remote_images(served.url)


def test_a_file_gone_from_the_server_is_an_unreadable_image(served):
    with pytest.raises(ImageReadError, match="not found on the storage"):
        load_image(RemoteImage(join_url(served.url, "gone.png")))


def test_a_folder_that_is_not_there_is_named(memory_url):
    with pytest.raises(RemoteStorageError, match="no folder there"):
        find_remote_images(memory_url + "-nope")


def test_urls_are_told_from_paths_and_passwords_are_refused():
    assert is_url("s3://bucket/images") and is_url("memory://x") and is_url("https://h/x")
    assert not is_url("/home/me/images") and not is_url("C:\\images") and not is_url("c://x")
    assert check_url(" gs://bucket/images/ ") == "gs://bucket/images"
    with pytest.raises(RemoteStorageError, match="password") as caught:
        check_url("https://me:secret@example.org/images")
    assert "secret" not in str(caught.value)
    assert "AWS_PROFILE" in str(caught.value)  # where credentials go instead
    with pytest.raises(RemoteStorageError, match="not a URL"):
        check_url("images")


def test_an_unknown_scheme_or_a_missing_plugin_says_what_to_install():
    with pytest.raises(RemoteStorageError, match="no storage plugin knows nosuch://"):
        list_files("nosuch://bucket/images")
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(RemoteStorageError, match=r"mrcnn-studio\[remote\]"):
            list_files("s3://bucket/images")


def test_every_remote_failure_is_an_mrcnn_error():
    assert issubclass(RemoteStorageError, MrcnnError)
