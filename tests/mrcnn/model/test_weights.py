"""Weights: safe checkpoint loading, COCO weights from the torch cache, offline downloads that
answer in seconds, COCO adaptation to a project's categories. Nothing leaves this machine:
every URL is a loopback address served (or not) by the test itself."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from mrcnn.errors import CheckpointError, NoWeightsError, ProjectError
from mrcnn.model import weights
from mrcnn.model.checkpoint import load_state, save_checkpoint
from mrcnn.model.coco_weights import (
    COCO_PLACEHOLDER,
    coco_cache_path,
    coco_categories,
    download_coco_weights,
    find_coco_weights,
)
from mrcnn.model.presets import build_model
from mrcnn.model.weights import adapt_coco_state, load_model

V2_FILE = "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"  # torchvision's file name
PRED = "roi_heads.box_predictor."
MASK = "roi_heads.mask_predictor.mask_fcn_logits."
SMALL = {"min_size": 64, "max_size": 96, "box_detections_per_img": 5}  # quick forward passes


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def coco_home(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A TORCH_HOME holding a (random) r50v2 COCO-shaped state dict under torchvision's name."""
    home = tmp_path_factory.mktemp("torch_home")
    torch.manual_seed(0)
    state = build_model(preset="r50v2", num_classes=91).state_dict()
    path = home / "hub" / "checkpoints" / V2_FILE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return home, state


@pytest.fixture
def cached_coco(coco_home, monkeypatch) -> dict[str, torch.Tensor]:
    home, state = coco_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    return state


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "empty_torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def no_download(monkeypatch) -> list:
    """Fails the test if anything tries to download; returns the list of attempts."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append((args, kwargs))
        raise NoWeightsError("download attempted in a test")

    # patched where load_model looks it up: weights imports it from mrcnn.model.coco_weights
    monkeypatch.setattr(weights, "download_coco_weights", refuse)
    return attempts


@pytest.fixture(scope="module")
def r18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return build_model(preset="r18", num_classes=3).state_dict()


@pytest.fixture
def r18_file(tmp_path, r18_state) -> Path:
    path = tmp_path / "mine.pt"
    save_checkpoint(path, state_dict=r18_state, preset="r18", categories=["cat", "dog"],
                    metadata={"note": "hand-made", "iters": 5})
    return path


def _same_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    got = model.state_dict()
    return got.keys() == state.keys() and all(torch.equal(got[k], v) for k, v in state.items())


# ---------------------------------------------------------------- unsafe files
class Payload:
    """Unpickling this calls open(path, "w"): a file appears if the payload ever runs."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@dataclass
class Namespace:
    """Like an argparse namespace pickled into a checkpoint by torchvision's scripts."""

    lr: float = 0.02


def test_pickled_payload_is_refused_and_never_runs(tmp_path, r18_state):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": "mrcnn-studio/1", "preset": "r18", "categories": ["cat", "dog"],
                "state_dict": r18_state, "metadata": {"x": Payload(marker)}}, path)

    with pytest.raises(CheckpointError, match="refused"):
        load_model(source=path)
    with pytest.raises(CheckpointError, match="refused"):
        load_state(path)
    assert not marker.exists()

    # control: the payload is real, and runs as soon as pickle is trusted
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_checkpoint_with_a_custom_class_is_refused(tmp_path, r18_state):
    path = tmp_path / "args.pt"
    torch.save({"model": r18_state, "args": Namespace()}, path)
    with pytest.raises(CheckpointError, match="Python objects"):
        load_model(source=path, preset="r18")


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_model(source=path)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(source=tmp_path / "missing.pt")


# ---------------------------------------------------------------- COCO weights in the cache
def test_coco_categories_keep_placeholders_in_place():
    names = coco_categories("r50v2")
    assert len(names) == 90 and names[0] == "person" and names[2] == "car"
    assert "__background__" not in names
    assert names[11] == COCO_PLACEHOLDER  # COCO id 12 is unused
    assert names.count(COCO_PLACEHOLDER) == 10
    assert coco_categories("r50") == names
    with pytest.raises(NoWeightsError, match="r18"):
        coco_categories("r18")


def test_cache_path_honours_torch_home(empty_torch_home):
    assert coco_cache_path("r50v2") == empty_torch_home / "hub" / "checkpoints" / V2_FILE
    assert coco_cache_path("r50").name.startswith("maskrcnn_resnet50_fpn_coco-")
    assert find_coco_weights("r50v2") is None
    assert find_coco_weights("r18") is None


def test_coco_weights_in_the_torch_cache_are_found_and_used(cached_coco, coco_home,
                                                             no_download):
    assert find_coco_weights("r50v2") == coco_home[0] / "hub" / "checkpoints" / V2_FILE

    loaded = load_model(source="auto")  # no project: straight to the torch cache
    assert loaded.kind == "coco" and loaded.source == "COCO weights (torch cache)"
    assert loaded.preset == "r50v2" and loaded.version_id is None
    assert loaded.categories == coco_categories("r50v2") and loaded.num_classes == 91
    assert _same_state(loaded.model, cached_coco)
    assert not loaded.model.training
    assert all(t.device.type == "cpu" for t in loaded.model.state_dict().values())
    assert not no_download


def test_coco_weights_adapted_to_project_categories(cached_coco, no_download):
    names = ["Person", "car", "zebra-stripe-thing", "traffic_light"]
    loaded = load_model(source="coco", categories=names)
    assert loaded.categories == names and loaded.num_classes == 5
    assert loaded.matched == ["Person", "car", "traffic_light"]
    got = loaded.model.state_dict()
    coco = cached_coco
    coco_label = {"Person": 1, "car": 3, "traffic_light": 10}
    for ours, name in enumerate(names, start=1):
        theirs = coco_label.get(name)
        rows = {PRED + "cls_score.weight": got[PRED + "cls_score.weight"][ours],
                PRED + "cls_score.bias": got[PRED + "cls_score.bias"][ours],
                PRED + "bbox_pred.weight": got[PRED + "bbox_pred.weight"][4 * ours:4 * ours + 4],
                PRED + "bbox_pred.bias": got[PRED + "bbox_pred.bias"][4 * ours:4 * ours + 4],
                MASK + "weight": got[MASK + "weight"][ours],
                MASK + "bias": got[MASK + "bias"][ours]}
        for key, row in rows.items():
            rpc = 4 if "bbox_pred" in key else 1
            if theirs is not None:
                assert torch.equal(row, coco[key][rpc * theirs:rpc * theirs + rpc].squeeze(0)), key
            else:  # fresh: equal to no COCO row at all
                table = coco[key].reshape(-1, rpc, *coco[key].shape[1:])
                assert not any(torch.equal(row.reshape(table[0].shape), t) for t in table), key
    # background rows kept, and everything outside the predictors is COCO's
    assert torch.equal(got[PRED + "cls_score.weight"][0], coco[PRED + "cls_score.weight"][0])
    assert torch.equal(got[PRED + "bbox_pred.bias"][:4], coco[PRED + "bbox_pred.bias"][:4])
    shared = [k for k in coco if not k.startswith((PRED, MASK))]
    assert all(torch.equal(got[k], coco[k]) for k in shared)
    assert not no_download


def test_adapted_state_loads_strictly_into_a_fresh_build(cached_coco):
    state, matched = adapt_coco_state(cached_coco, "r50v2", ["dog", "widget"])
    assert matched == ["dog"]
    build_model(preset="r50v2", num_classes=3).load_state_dict(state, strict=True)


def test_r50_coco_file_without_batchnorm_counters_loads(empty_torch_home):
    """torchvision's v1 COCO file was saved with FrozenBatchNorm2d: no num_batches_tracked."""
    state = {k: v for k, v in build_model(preset="r50", num_classes=91).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    path = coco_cache_path("r50")
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    loaded = load_model(source="coco", preset="r50", categories=[])
    assert loaded.categories == coco_categories("r50")
    got = loaded.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())


def test_torchvision_coco_file_picked_by_hand(cached_coco, coco_home):
    path = coco_home[0] / "hub" / "checkpoints" / V2_FILE
    loaded = load_model(source=path, categories=["car"])  # preset found from the keys
    assert loaded.preset == "r50v2" and loaded.categories == ["car"]
    assert loaded.matched == ["car"] and loaded.source == f"file {V2_FILE}"


# ---------------------------------------------------------------- offline, never hanging
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_partial_files(home: Path) -> bool:
    folder = home / "hub" / "checkpoints"
    return not folder.exists() or not any(folder.iterdir())


def test_download_from_a_closed_port_fails_fast(empty_torch_home):
    url = f"http://127.0.0.1:{_free_port()}/{V2_FILE}"
    start = time.monotonic()
    with pytest.raises(NoWeightsError) as err:
        download_coco_weights("r50v2", url=url)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert str(coco_cache_path("r50v2")) in message  # names the exact place to copy the file
    assert "checkpoint file" in message and "from scratch" in message
    assert "internet" in message
    assert _no_partial_files(empty_torch_home)


def test_download_from_a_server_that_never_answers_fails_within_5s(empty_torch_home):
    with socket.socket() as server:  # listens (the kernel accepts), never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/{V2_FILE}"
        start = time.monotonic()
        with pytest.raises(NoWeightsError, match="did not answer"):
            download_coco_weights("r50v2", url=url)  # the default timeout
        assert time.monotonic() - start < 5
    assert _no_partial_files(empty_torch_home)


class _Server:
    """A loopback HTTP server with a few canned answers."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path == "/stall":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
                    outer.release.wait(10)
                    return
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    body = b"pretend weights " * 40000  # 640 kB: several chunks
    good = f"/weights-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    srv = _Server({good: body, "/weights-deadbeef.pth": body})
    srv.body, srv.good = body, good
    yield srv
    srv.close()


def test_download_streams_with_progress_and_checks_the_hash(empty_torch_home, server):
    seen: list[tuple[int, int | None]] = []
    path = download_coco_weights("r50v2", url=server.url(server.good),
                                 progress=lambda done, total: seen.append((done, total)))
    assert path == coco_cache_path("r50v2") and path.read_bytes() == server.body
    assert seen[0] == (0, len(server.body)) and seen[-1] == (len(server.body),) * 2
    assert len(seen) > 2 and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no leftovers


def test_download_with_a_wrong_hash_keeps_nothing(empty_torch_home, server):
    with pytest.raises(NoWeightsError, match="corrupt"):
        download_coco_weights("r50v2", url=server.url("/weights-deadbeef.pth"))
    assert _no_partial_files(empty_torch_home)


def test_download_errors_and_cancel_keep_nothing(empty_torch_home, server):
    with pytest.raises(NoWeightsError, match="404"):
        download_coco_weights("r50v2", url=server.url("/nothing-here.pth"))

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        if done > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        download_coco_weights("r50v2", url=server.url(server.good), progress=cancel)

    start = time.monotonic()
    with pytest.raises(NoWeightsError, match="did not answer"):
        download_coco_weights("r50v2", url=server.url("/stall"), read_timeout=0.5)
    assert time.monotonic() - start < 5
    assert _no_partial_files(empty_torch_home)


def test_auto_without_any_weights_fails_fast_and_downloads_nothing(
        empty_torch_home, no_download, new_project, tmp_path):
    (tmp_path / "images").mkdir()
    project = new_project(tmp_path / "images")
    start = time.monotonic()
    for kwargs in ({}, {"project": project}, {"source": "coco"}):
        with pytest.raises(NoWeightsError) as err:
            load_model(**kwargs)
        assert "from scratch" in str(err.value)
    assert time.monotonic() - start < 5
    assert not no_download

    with pytest.raises(NoWeightsError, match="download attempted"):
        load_model(project=project, allow_download=True)
    assert len(no_download) == 1
    with pytest.raises(NoWeightsError, match="no active model version"):
        load_model(project=project, source="active")
    with pytest.raises(NoWeightsError, match="r18 preset has no COCO"):
        load_model(source="coco", preset="r18", allow_download=True)
    assert len(no_download) == 1


# ---------------------------------------------------------------- our checkpoints
def test_checkpoint_round_trips_through_a_file(r18_file, r18_state):
    loaded = load_model(source=r18_file, categories=["dog", "cat"])  # order does not matter
    assert loaded.preset == "r18" and loaded.categories == ["cat", "dog"]
    assert loaded.source == "file mine.pt" and loaded.kind == "checkpoint"
    assert loaded.metadata == {"note": "hand-made", "iters": 5} and loaded.path == r18_file
    assert loaded.label_map().label("dog") == 2
    assert _same_state(loaded.model, r18_state) and not loaded.model.training

    # the model runs exactly like one built and loaded the ordinary way
    reference = build_model(preset="r18", num_classes=3, **SMALL)
    reference.load_state_dict(r18_state)
    reference.eval()
    fast = load_model(source=r18_file, build_kwargs=SMALL).model
    image = [torch.rand(3, 80, 96, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        want, got = reference(image)[0], fast(image)[0]
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_checkpoint_round_trips_through_the_active_version(new_project, tmp_path, r18_state):
    (tmp_path / "images").mkdir()
    project = new_project(tmp_path / "images")
    save_checkpoint(project.folder / "models" / "v1.pt", state_dict=r18_state, preset="r18",
                    categories=["cat", "dog"])
    version = project.add_model_version("models/v1.pt", "r18", activate=True)
    for source in ("active", "auto"):
        loaded = load_model(project=project, source=source)
        assert loaded.source == f"{version.name} (project)" and loaded.kind == "version"
        assert loaded.version_id == version.id and loaded.categories == ["cat", "dog"]
        assert _same_state(loaded.model, r18_state)


def test_checkpoint_of_another_architecture_is_refused(tmp_path, r18_state, r18_file):
    with pytest.raises(CheckpointError, match="holds a r18 model, not r50v2"):
        load_model(source=r18_file, preset="r50v2")

    lying = tmp_path / "lying.pt"  # r18 weights labelled r50v2
    save_checkpoint(lying, state_dict=r18_state, preset="r50v2", categories=["cat", "dog"])
    with pytest.raises(CheckpointError) as err:
        load_model(source=lying)
    message = str(err.value)
    assert "r50v2 architecture" in message and "missing keys" in message
    assert "backbone." in message  # names a few keys

    plain = tmp_path / "plain.pth"
    torch.save(r18_state, plain)
    with pytest.raises(CheckpointError, match="does not fit the r50v2 architecture"):
        load_model(source=plain, preset="r50v2")


def test_checkpoint_with_missing_keys_is_refused(tmp_path, r18_state):
    partial = {k: v for k, v in r18_state.items() if not k.startswith("rpn.")}
    path = tmp_path / "partial.pt"
    save_checkpoint(path, state_dict=partial, preset="r18", categories=["cat", "dog"])
    with pytest.raises(CheckpointError, match=r"r18 architecture: \d+ missing keys \(rpn\."):
        load_model(source=path)


def test_checkpoint_for_other_categories_names_them(r18_file):
    with pytest.raises(CheckpointError) as err:
        load_model(source=r18_file, categories=["cat", "bird"])
    message = str(err.value)
    assert "missing 'bird'" in message and "extra 'dog'" in message


def test_plain_state_dict_finds_its_preset(tmp_path, r18_state):
    path = tmp_path / "plain.pth"
    torch.save(r18_state, path)
    loaded = load_model(source=path)
    assert loaded.preset == "r18" and loaded.categories == ["class 1", "class 2"]
    assert _same_state(loaded.model, r18_state)
    named = load_model(source=path, preset="r18", categories=["a", "b"])
    assert named.categories == ["a", "b"]
    with pytest.raises(CheckpointError, match="predicts 2 categories, the project has 3"):
        load_model(source=path, categories=["a", "b", "c"])


def test_scratch_needs_categories():
    loaded = load_model(source="scratch", preset="r18", categories=["cat"])
    assert loaded.kind == "scratch" and loaded.source == "random init"
    assert loaded.model.roi_heads.box_predictor.cls_score.out_features == 2
    with pytest.raises(ProjectError, match="add at least one category"):
        load_model(source="scratch", preset="r18")  # a clear error, not a traceback
