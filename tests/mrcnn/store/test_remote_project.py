"""A project over images under a URL: registered like a local folder's (same hashes, same
splits), one image at a time as each is read, resumable after a lost connection, and no
edit ever lost when the storage goes away."""

from __future__ import annotations

import io
import shutil
import uuid

import fsspec
import numpy as np
import pytest
from PIL import Image

from mrcnn import masks
from mrcnn.errors import ProjectError, RemoteStorageError
from mrcnn.io.images import load_image
from mrcnn.io.remote import RemoteImage
from mrcnn.store.project import Project, remote_project_folder, split_for
from mrcnn.store.scan import scan_folder, scan_remote
from mrcnn.testing.http_folder import FolderServer

N_IMAGES = 12


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (20 + seed, 30, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


pytestmark = pytest.mark.usefixtures("image_cache_dir")


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "images"
    (folder / "more").mkdir(parents=True)
    for i in range(N_IMAGES):
        (folder / ("more" if i % 3 == 0 else "") / f"img {i:02d}.png").write_bytes(png(i))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


@pytest.fixture
def served(folder):
    with FolderServer(folder) as server:
        yield server


def test_a_project_over_a_url_registers_the_images_a_local_folder_would(folder, served,
                                                                       tmp_path):
    with Project.create(tmp_path / "local", folder) as local:
        scan_folder(local)
        expected = {(im.path, im.width, im.height, im.sha256, im.split)
                    for im in local.images()}
    with Project.create(tmp_path / "remote", served.url + "/") as remote:
        report = scan_folder(remote)
        assert report.added == N_IMAGES
        assert [p for p, _reason in report.skipped] == [f"{served.url}/broken.png"]
        got = {(im.path, im.width, im.height, im.sha256, im.split) for im in remote.images()}
        assert got == expected
        assert all(im.split == split_for(im.sha256) for im in remote.images())
        assert remote.images_location == served.url
        assert remote.summary()["images_root"] == served.url
    with Project.open(tmp_path / "remote", read_only=True) as again:
        assert again.is_remote and again.images_url == served.url
        image = again.images()[0]
        source = again.image_source(image)
        assert source == RemoteImage(f"{served.url}/img%2001.png", image.sha256)
        assert load_image(source).shape == (image.height, image.width, 3)


def test_images_are_registered_one_by_one_as_they_are_read(served, tmp_path):
    """The list fills while the rest is fetched: another reader sees each image as soon as
    it is read, long before the last one is."""
    seen = []
    with Project.create(tmp_path / "p", served.url) as project:
        def progress(done: int, total: int) -> None:
            with Project.open(tmp_path / "p", read_only=True) as reader:
                seen.append((done, len(reader.images())))

        scan_remote(project, progress=progress)
    counts = [n for _done, n in seen]
    assert [d for d, _n in seen] == list(range(1, N_IMAGES + 2))  # 12 images, 1 broken file
    assert all(0 <= b - a <= 1 for a, b in zip(counts, counts[1:], strict=False))
    assert counts[N_IMAGES // 2] >= N_IMAGES // 2 - 1  # halfway, half of them are listed
    assert counts[-1] == N_IMAGES


def test_a_scan_cut_by_a_lost_connection_keeps_what_it_added_and_the_next_adds_the_rest(
        folder, served, tmp_path):
    with Project.create(tmp_path / "p", served.url) as project:
        def stop_after_three(done: int, _total: int) -> None:
            if done == 3:
                served.stop()

        with pytest.raises(RemoteStorageError) as caught:
            scan_remote(project, progress=stop_after_three)
        assert served.url in str(caught.value) and "Check the network" in str(caught.value)
        assert len(project.images()) == 2  # of the 3 files read, broken.png is no image
        with FolderServer(folder, port=served.port):  # the storage is back
            report = scan_folder(project)
        assert (report.known, report.added) == (2, N_IMAGES - 2)
        assert len({im.path for im in project.images()}) == N_IMAGES


def test_no_edit_is_lost_when_the_storage_goes_away(served, tmp_path, image_cache_dir):
    with Project.create(tmp_path / "p", served.url) as project:
        scan_folder(project)
        shutil.rmtree(image_cache_dir)  # as if evicted since: the next reads need the storage
        cat = project.add_category("thing")
        first, second = project.images()[:2]
        load_image(project.image_source(first))  # shown once: now in the cache
        mask = np.zeros((first.height, first.width), bool)
        mask[2:8, 3:12] = True
        served.stop()
        inst = project.add_instance(first.id, cat.id, masks.encode(mask))
        project.set_image_status(first.id, "reviewed")
        assert load_image(project.image_source(first)).shape[:2] == mask.shape  # cached
        project.set_image_status(second.id, "in_review")
        with pytest.raises(RemoteStorageError, match="cannot reach"):
            project.image_path(second)  # evicted or never fetched: the storage is gone
        assert project.integrity_check() == "ok"
    with Project.open(tmp_path / "p", read_only=True) as again:
        assert again.image(first.id).status == "reviewed"
        assert again.instance(inst.id).rle == masks.encode(mask)
        assert again.image(second.id).status == "in_review"


def test_a_project_over_memory_storage(tmp_path):
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}/images"
    for i in range(3):
        fs.pipe(f"{root}/{i}.png", png(i))
    try:
        with Project.create(tmp_path / "p", f"memory:/{root}") as project:
            assert scan_folder(project).added == 3
            assert [im.path for im in project.images()] == ["0.png", "1.png", "2.png"]
            path = project.image_path(project.images()[1])
            assert path.is_file() and path.suffix == ".png"
            assert path.is_relative_to(tmp_path / "image cache")
    finally:
        fs.rm(root.rsplit("/", 1)[0], recursive=True)


def test_a_url_project_has_a_default_local_folder_per_url(tmp_path, monkeypatch):
    monkeypatch.setenv("MRCNN_PROJECTS", str(tmp_path / "projects"))
    a = remote_project_folder("s3://bucket/cats/")
    assert a == remote_project_folder("s3://bucket/cats")
    assert a.parent == tmp_path / "projects" and "bucket-cats" in a.name
    assert remote_project_folder("s3://bucket/dogs") != a
    with pytest.raises(RemoteStorageError, match="password"):
        remote_project_folder("https://u:pw@host/x")


def test_a_url_is_kept_without_contacting_it_and_a_local_scan_rejected(tmp_path):
    with Project.create(tmp_path / "p", "s3://no-such-bucket/images") as project:
        assert project.images_url == "s3://no-such-bucket/images"
    (tmp_path / "images").mkdir()
    with Project.create(tmp_path / "q", tmp_path / "images") as local:
        with pytest.raises(ProjectError, match="not a URL"):
            scan_remote(local)
