"""The CPU inference runtime for feature extraction: OpenVINO, compiled for this CPU.

EfficientNet-Lite0, one thread, CPU-ms per image (``bench/feature_throughput.py`` prints the
comparison), on the two 2-core machines this project ran on:

==========================  ==============================  ============  =====================================
runtime, precision          Intel, AVX-512 + BF16 + AMX     AMD, AVX2     logits vs torch fp32 (rel. L2, median)
==========================  ==============================  ============  =====================================
torch fp32 (eager)          29                              —             —
torch bf16 autocast         15–18                           (emulated)    2–4 %
**OpenVINO fp32**           **15** (16 images per call)     **11.5–14**   **4e-7**
OpenVINO bf16               8                               (runs fp32)   2 %
==========================  ==============================  ============  =====================================

So fp32 — the numerics the classifiers were measured with, the same on every CPU — costs what torch's
bf16 did, and ``precision="auto"`` is fp32 wherever OpenVINO runs (bf16 on request where the CPU has
it: 2× faster, decisions of a classifier fitted on fp32 features differ on ~2 % of images).

The network is converted once per backbone, feature kind, weights and OpenVINO version and kept on
disk (OpenVINO IR under ``<user cache>/openvino/``, ~10 s to convert, 0.1 s to read); each process
compiles it for itself on first use (~0.1 s; never inherited across ``fork``, which OpenVINO's
thread pools do not survive), for a static input of exactly :data:`NETWORK_BATCH` images: a call of
any size runs in such chunks (the last one padded with zeros, whose rows are dropped), so a frame's
features never depend on the batch or chunk size it came in. Where OpenVINO is missing or the
conversion fails, feature extraction falls back to torch (with a warning).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from tame_assets.config import user_cache_dir

#: Images per OpenVINO inference on the CPU, everywhere (in-process, loader workers, Dask workers).
#: Four images' activations stay in the caches: per image 11.5 CPU-ms for Lite0 on one AVX2 core vs
#: 12.7 for 16 (and 13.7 for 16 with the IR's dynamic shape), and the first inference of a process
#: costs 0.015 s more than the next instead of 0.07 s. Changing it moves features by ~1 ulp.
NETWORK_BATCH = 4
#: OpenVINO's name of each precision.
OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}

_log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def openvino_version() -> str | None:
    """The installed OpenVINO's version, None when it cannot be imported."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__


@dataclass(frozen=True)
class OpenVinoNetwork:
    """A converted network (its IR file) to run at ``precision`` on ``threads`` threads: call it with
    an (N, 3, s, s) float32 batch; returns (N, d) float32 (computed :data:`NETWORK_BATCH` at a time)."""

    ir_path: str
    precision: str
    threads: int
    input_size: int
    feature_dim: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        request = _infer_request(self.ir_path, self.precision, self.threads, self.input_size, os.getpid())
        images = x.numpy()
        out = np.empty((len(images), self.feature_dim), np.float32)
        chunk = np.zeros((NETWORK_BATCH, 3, self.input_size, self.input_size), np.float32)
        for start in range(0, len(images), NETWORK_BATCH):
            n = min(NETWORK_BATCH, len(images) - start)
            chunk[:n] = images[start : start + n]
            chunk[n:] = 0.0
            out[start : start + n] = request.infer({0: chunk})[0][:n]
        return torch.from_numpy(out)


@lru_cache(maxsize=8)
def _infer_request(ir_path: str, precision: str, threads: int, input_size: int, pid: int):
    """The network compiled for this CPU in process ``pid`` for an input of :data:`NETWORK_BATCH`
    images (a forked child compiles its own; the compiled blob is cached beside the IR, so that costs
    ~0.1 s after the first time)."""
    import openvino

    core = openvino.Core()
    core.set_property({"CACHE_DIR": str(Path(ir_path).parent / "compiled")})
    network = core.read_model(ir_path)
    network.reshape([NETWORK_BATCH, 3, input_size, input_size])  # static shapes: faster kernels
    compiled = core.compile_model(
        network,
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[precision],
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,  # pinned, two worker processes would share one core
        },
    )
    return compiled.create_infer_request()


@lru_cache(maxsize=16)
def _weights_digest(model: torch.nn.Module) -> str:
    """Digest of the weights (computed once per model object: backbones are cached per process)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def openvino_network(model, precision: str, threads: int, cache_dir: Path | None = None) -> OpenVinoNetwork | None:
    """``model`` (a :class:`~tame_assets.ml.backbones.Backbone`, unfused) as an OpenVINO network,
    converted now unless its IR is cached; None (and a warning) where OpenVINO is unavailable or the
    conversion fails — callers then run the torch network."""
    version = openvino_version()
    if version is None:
        return None
    folder = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "openvino"
    release = re.match(r"[0-9.]+", version).group().strip(".")  # "2026.4.1-22982-…-releases/2026/4" → 2026.4.1
    key = f"{model.name}-{model.feature_kind}-{model.input_size}-{_weights_digest(model)}-openvino{release}"
    ir_path = _converted(model, folder, key)
    return OpenVinoNetwork(str(ir_path), precision, threads, model.input_size, model.feature_dim) if ir_path else None


@lru_cache(maxsize=16)
def _converted(model, folder: Path, key: str) -> Path | None:
    """The IR file of ``model``, converted unless on disk; None after a failed conversion (tried once
    per process)."""
    ir_path = folder / f"{key}.xml"
    if not ir_path.exists():
        try:
            _convert(model, folder, key)
        except Exception as exc:  # noqa: BLE001 - any converter failure: torch still computes the features
            _log.warning("OpenVINO conversion of %s failed (%s: %s); using torch", key, type(exc).__name__, exc)
            return None
    return ir_path


def _convert(model, folder: Path, key: str) -> None:
    """Convert and save the IR atomically: the .bin, then the .xml (whose presence means complete)."""
    import openvino

    folder.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(NETWORK_BATCH, 3, model.input_size, model.input_size)
    _log.info("converting %s for OpenVINO (once per machine, ~10 s)", key)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation and tracer warnings: not the user's
        converted = openvino.convert_model(model.eval(), example_input=example)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder))
    try:
        openvino.save_model(converted, scratch / "model.xml", compress_to_fp16=False)
        os.replace(scratch / "model.bin", folder / f"{key}.bin")
        os.replace(scratch / "model.xml", folder / f"{key}.xml")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
