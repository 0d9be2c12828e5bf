"""The backbone and FPN run by ONNX Runtime, for fp32 prediction on a CPU.

On a CPU without bf16 matrix units (AMX), fp32 is the fastest precision and the backbone is
the largest single stage of prediction; ONNX Runtime's CPU kernels run it faster than torch's
(`benchmarks/inference.py` measures by how much, and the agreement: the same features up to
float rounding). The heads stay in torch. Only the backbone is exported: at batch 1 over one
large image ONNX Runtime gains most, while the box head's batch of 1000 proposals runs as fast
in torch.

Exporting takes seconds, so a model's file is written once, under the user's cache folder
(`onnx/`, named by a hash of the backbone's weights and the library versions), and reused;
the model process prepares it in the background while the first images use torch
(`mrcnn.serving.session`). A file is used only after it gives the torch backbone's features
on a test input (`AGREEMENT`); anything that fails leaves the torch path in place.

Optional: onnxruntime (the `fast` extra). `MRCNN_ONNX=0` keeps the torch backbone.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import logging
import os
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mrcnn.io.user_dirs import user_cache_dir

log = logging.getLogger(__name__)

#: The largest relative difference from the torch backbone's features (max |a - b| over
#: max |a|, per level) for the exported one to be used.
AGREEMENT = 1e-4
#: Exported backbones kept in the cache, the most recently used first.
KEEP_FILES = 4
#: The opset the export writes (ONNX Runtime 1.17, our lowest, reads it).
OPSET = 17


def onnx_wanted() -> bool:
    """Whether ONNX Runtime may run the backbone: installed, and not turned off with
    MRCNN_ONNX=0."""
    if os.environ.get("MRCNN_ONNX", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_folder() -> Path:
    """Where exported backbones are kept: $MRCNN_ONNX_CACHE, else the user's cache folder."""
    return Path(os.environ.get("MRCNN_ONNX_CACHE") or user_cache_dir() / "onnx")


class OrtBackbone(nn.Module):
    """A backbone that runs an exported file in ONNX Runtime: takes (N, 3, H, W) float32,
    returns the torch backbone's OrderedDict of FPN levels (same names, same shapes)."""

    def __init__(self, path: Path, names: list[str], out_channels: int, threads: int):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # torch runs the heads right after: idle threads must sleep, not spin on its cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.names = list(names)
        self.out_channels = out_channels
        self.path = path

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        outputs = self.session.run(None, {"images": array})
        return OrderedDict((name, torch.from_numpy(out))
                           for name, out in zip(self.names, outputs, strict=True))


class _Levels(nn.Module):
    """The backbone with its levels as a tuple: what the exporter can name."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.backbone(x).values())


def backbone_key(backbone: nn.Module) -> str:
    """A name for the backbone's exported file: its structure, its weights and the versions
    of the libraries that write and read it."""
    import onnxruntime

    digest = hashlib.sha256()
    digest.update(f"{torch.__version__}|{onnxruntime.__version__}|{OPSET}".encode())
    for name, tensor in backbone.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(repr(backbone).encode())
    return digest.hexdigest()[:24]


def _levels_of(backbone: nn.Module, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
    with torch.inference_mode():
        return backbone(x)


def export_backbone(backbone: nn.Module, path: Path, *, height: int = 320,
                    width: int = 384) -> None:
    """Write the backbone (fp32, eval) to `path` as ONNX, any input height and width
    (traced at `height` x `width`)."""
    model = _Levels(copy.deepcopy(backbone).float().eval()).to(
        memory_format=torch.contiguous_format)
    x = torch.zeros(1, 3, height, width)
    names = list(_levels_of(backbone, x))
    export = functools.partial(
        torch.onnx.export, model, (x,), input_names=["images"],
        output_names=[f"level_{n}" for n in names], opset_version=OPSET,
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}})
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing and deprecation
        written = Path(tmp) / path.name
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            export(f=str(written), dynamo=False)  # the TorchScript exporter: no onnxscript
        else:  # torch before 2.5
            export(f=str(written))
        os.replace(written, path)  # whole or not at all



def check_agreement(backbone: nn.Module, fast: nn.Module, *, height: int = 256,
                    width: int = 352, seed: int = 0) -> float:
    """The largest relative difference between the two backbones' levels on a test input
    (of another size than the export's, so a traced-in size would show)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, height, width, generator=g) * 2 - 1
    ref, got = _levels_of(backbone, x), _levels_of(fast, x)
    if list(ref) != list(got):
        return float("inf")
    worst = 0.0
    for name, a in ref.items():
        b = got[name]
        if a.shape != b.shape:
            return float("inf")
        scale = float(a.abs().max()) or 1.0
        worst = max(worst, float((a.float() - b.float()).abs().max()) / scale)
    return worst


def _tidy(folder: Path, keep: int) -> None:
    files = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        try:
            old.unlink()
        except OSError:
            pass


def onnx_backbone(backbone: nn.Module, *, threads: int | None = None,
                  folder: Path | None = None) -> OrtBackbone:
    """The backbone run by ONNX Runtime: from the cache when this backbone was exported
    before, else exported now (seconds). Raises RuntimeError when the file does not give
    the torch backbone's features (within AGREEMENT) or cannot be made."""
    folder = folder or cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"backbone-{backbone_key(backbone)}.onnx"
    if not path.exists():
        log.info("exporting the backbone to %s", path)
        export_backbone(backbone, path)
    else:
        path.touch()  # most recently used
    names = list(_levels_of(backbone, torch.zeros(1, 3, 64, 64)))
    out_channels = int(getattr(backbone, "out_channels", 0))
    try:
        fast = OrtBackbone(path, names, out_channels,
                           threads if threads is not None else torch.get_num_threads())
    except Exception as exc:  # a damaged file: written again next time
        path.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX Runtime could not load {path.name}: {exc}") from exc
    difference = check_agreement(backbone, fast)
    if not difference <= AGREEMENT:
        path.unlink(missing_ok=True)
        raise RuntimeError(f"the exported backbone differs from torch's by {difference:.2g} "
                           f"(relative; the bar is {AGREEMENT:g})")
    _tidy(folder, KEEP_FILES)
    return fast


def applies(choice) -> bool:
    """Whether a prediction on `choice` (a `DeviceChoice`) should run its backbone in ONNX
    Runtime: fp32 on a CPU (where bf16 pays, torch's bf16 path is the faster one), with
    onnxruntime installed and not turned off."""
    return choice.device.type == "cpu" and choice.amp_dtype is None and onnx_wanted()


class BackgroundBackbone:
    """Prepares a backbone's ONNX Runtime twin in a background thread (`start`, once) and
    hands it over when it is ready (`take`), so the caller keeps predicting with torch
    meanwhile and swaps between two predictions, in its own thread."""

    def __init__(self, backbone: nn.Module, *, threads: int | None = None):
        import threading

        self._backbone: nn.Module | None = backbone
        self._threads = threads if threads is not None else torch.get_num_threads()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._ready: OrtBackbone | None = None
        #: why the torch backbone stays, when preparing failed
        self.error: str | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        import threading

        if self._thread is None:
            self._thread = threading.Thread(target=self._prepare, name="onnx-backbone",
                                            daemon=True)
            self._thread.start()

    def _prepare(self) -> None:
        # held only while preparing: the caller's model holds it as long as it needs it
        backbone, self._backbone = self._backbone, None
        try:
            if backbone is None:
                raise RuntimeError("nothing to prepare")
            self._ready = onnx_backbone(backbone, threads=self._threads)
            log.info("the backbone now runs in ONNX Runtime (%s)", self._ready.path.name)
        except Exception as exc:  # any failure: torch stays, and says why in the log
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("the backbone stays in torch: %s", self.error)
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until preparing has ended (True) or `timeout` seconds passed (False)."""
        return self._done.wait(timeout)

    def take(self) -> OrtBackbone | None:
        """The prepared backbone, once (None before it is ready, after a failure, and after
        it was taken)."""
        if not self._done.is_set():
            return None
        ready, self._ready = self._ready, None
        return ready
