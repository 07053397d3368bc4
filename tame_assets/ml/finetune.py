"""Fine-tuning the last stage of an EfficientNet-Lite backbone on a small labelled image set (CPU).

The network up to its last ``trainable_blocks`` MBConv blocks stays frozen: its activations are computed once per image
and augmentation — the 4 quarter turns × mirror, exact on the pixel grid (an all-sky image has no
preferred azimuth) — and cached. The remaining MBConv blocks, the head convolution and a new linear
classifier are trained on that cache (AdamW, one-cycle schedule, BatchNorm statistics kept from
ImageNet: batches of 32 are too small to re-estimate them). Predictions average the softmax over
the 4 quarter turns (test-time augmentation); optionally they are averaged with the probabilities
of the frozen-feature RBF SVM (``blend_frozen_svm``) and over several independently initialised
networks (``networks``). Training runs under bf16 autocast where the hardware has native bf16.
Accuracies measured on the 300 real UiO Ny-Ålesund images are in README.

Plain Python API: :func:`fine_tune` (fit + cross-validated metrics) returns a picklable
:class:`FineTunedNetwork` whose :meth:`~FineTunedNetwork.predict_proba_images` classifies files.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from torch import nn
from torch.utils.data import DataLoader

from tame_assets.ml.backbones import LITE_INPUT_SIZES, load_backbone, pick_device
from tame_assets.ml.loading import (
    ImageDataset,
    choose_precision,
    collate_batch,
    default_workers,
    half_dtype,
    to_input_batch,
    worker_init,
)
from tame_assets.ml.svm import DEFAULT_TRAIN_ROTATIONS as SVM_ROTATIONS
from tame_assets.ml.svm import features_for, fit_rbf_svm, fold_metrics, proba_in_order

#: Cached training augmentations: (quarter turns counter-clockwise, mirrored left–right).
AUGMENTATIONS = tuple((k, m) for m in (False, True) for k in range(4))
#: Test-time augmentation: the 4 quarter turns.
TTA = tuple((k, False) for k in range(4))
Progress = Callable[[int, int], None]


@dataclass
class FineTuneConfig:
    """Recipe; defaults are the best of three configurations measured on the real UiO set (README)."""

    backbone: str = "efficientnet_lite2"
    trainable_blocks: int = 1  # MBConv blocks trained from the end (Lite2's last: 208 → 352 channels)
    epochs: int = 8
    batch_size: int = 32
    lr_head: float = 1e-3
    lr_body: float = 2e-4
    weight_decay: float = 1e-2
    label_smoothing: float = 0.0  # 0.1 was no better on the real UiO set (README)
    seed: int = 0
    #: Networks trained from different initialisations (seeds ``seed``, ``seed`` + 100, …), their
    #: probabilities averaged; training time × ``networks``. Real UiO set, 3 splits: 3 networks
    #: 85.0 / 94.6 % vs 84.9 / 94.4 % for single ones (README).
    networks: int = 1
    #: Average the probabilities with an RBF SVM on frozen logits (mean of SVM_ROTATIONS): over five
    #: CV splits of the real UiO set 84.5 / 94.4 % vs 84.9 / 94.4 % for the network alone (README).
    blend_frozen_svm: bool = False
    #: Input side in pixels; None: the backbone's native size (Lite2: 260; 352 was no better, README).
    input_size: int | None = None

    @property
    def size(self) -> int:
        return self.input_size or LITE_INPUT_SIZES[self.backbone]

    def __post_init__(self):
        if self.backbone not in LITE_INPUT_SIZES:
            raise ValueError(f"fine-tuning supports {sorted(LITE_INPUT_SIZES)}, not {self.backbone!r}")
        if self.trainable_blocks < 1:
            raise ValueError(f"trainable_blocks must be ≥ 1, not {self.trainable_blocks}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be ≥ 1, not {self.epochs}")
        if self.networks < 1:
            raise ValueError(f"networks must be ≥ 1, not {self.networks}")

    def member_seeds(self) -> list[int]:
        """Initialisation seed of each network."""
        return [self.seed + 100 * k for k in range(self.networks)]


def augment(units: np.ndarray, quarter_turns: int, mirrored: bool) -> np.ndarray:
    """``units`` (N, s, s) rotated by ``quarter_turns`` × 90° counter-clockwise, then mirrored left–right."""
    out = np.rot90(units, quarter_turns, axes=(1, 2))
    return np.ascontiguousarray(out[:, :, ::-1] if mirrored else out)


def load_units(
    paths: Sequence[str], size: int, batch_size: int = 32, green: bool = False, max_image_pixels: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Preprocessed unit images (N, size, size) float32 (the paper's preprocessing, 16-bit kept;
    ``green``: the G channel of RGB images, as OATH), ``ok`` (N,) and per-file errors (naming the
    file); unreadable images and those above ``max_image_pixels`` are zero."""
    n = len(paths)
    workers = default_workers() if n > batch_size else 0
    dataset = ImageDataset([str(p) for p in paths], size, green=green, max_pixels=max_image_pixels)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_batch,
        worker_init_fn=worker_init if workers else None,
    )
    units = np.zeros((n, size, size), np.float32)
    ok, errors = np.zeros(n, bool), [None] * n
    for idx, batch, _stats, batch_errors in loader:
        units[idx] = batch.numpy()
        for i, e in zip(idx.tolist(), batch_errors):
            ok[i], errors[i] = not e, e or None
    return units, ok, errors


class _Trunk(nn.Module):
    """Stem and the first ``n`` blocks of an ``efficientnet_lite_pytorch`` network (frozen)."""

    def __init__(self, net: nn.Module, n: int):
        super().__init__()
        self.net, self.n = net, n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[: self.n]:
            x = block(x, drop_connect_rate=0.0)
        return x


class _Top(nn.Module):
    """Blocks [n, end), head convolution, pooling and a new linear classifier (trainable)."""

    def __init__(self, net: nn.Module, n: int, n_classes: int):
        super().__init__()
        self.blocks = nn.ModuleList(net._blocks[n:])
        self.offset, self.total = n, len(net._blocks)
        self.drop_connect = float(net._global_params.drop_connect_rate or 0.0)
        self.conv_head, self.bn1, self.act = net._conv_head, net._bn1, net._swish
        self.fc = nn.Linear(net._fc.in_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            rate = self.drop_connect * (self.offset + i) / self.total if self.training else 0.0
            x = block(x, drop_connect_rate=rate)
        x = self.act(self.bn1(self.conv_head(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _network(config: FineTuneConfig, device: torch.device | str = "cpu", fused: bool = False) -> nn.Module:
    """The pretrained network on ``device`` (cached per process: never modified here); ``fused``:
    the inference variant (BatchNorm folded, channels_last: same function, ~1.9× faster trunk)."""
    return load_backbone(config.backbone, "logits", device=device, fused=fused).network


def _frozen_blocks(net: nn.Module, config: FineTuneConfig) -> int:
    return max(0, len(net._blocks) - config.trainable_blocks)


def _new_top(config: FineTuneConfig, n_classes: int) -> _Top:
    net = copy.deepcopy(_network(config))
    return _Top(net, _frozen_blocks(net, config), n_classes)


def trunk_activations(
    units: np.ndarray,
    config: FineTuneConfig,
    augmentations=AUGMENTATIONS,
    device: torch.device | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Frozen-trunk activations of unit images (N, s, s) under each augmentation:
    (len(augmentations), N, C, H, W) float32 on CPU (half-precision autocast where the hardware has
    it, as feature extraction: :func:`~tame_assets.ml.features.choose_precision`)."""
    device = device or pick_device(None)
    net = _network(config, device, fused=True)
    trunk = _Trunk(net, _frozen_blocks(net, config)).eval()
    half = choose_precision(device, "auto") == "bf16"
    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=half_dtype(device), enabled=half):
        for a, (k, m) in enumerate(augmentations):
            x = augment(units, k, m)
            out.append(
                torch.cat(
                    [
                        trunk(to_input_batch(torch.from_numpy(x[i : i + 32])).to(device)).float().cpu()
                        for i in range(0, len(x), 32)
                    ]
                )
            )
            if progress:
                progress(a + 1, len(augmentations))
    return torch.stack(out) if out else torch.empty(0)


def _bf16_training(device: torch.device) -> bool:
    """bf16 autocast for training (fp32 weights and optimizer) where feature extraction picks half
    precision and that half type is bf16 (fp16 would need loss scaling): 2.0× faster on this AMX CPU
    (measured, one epoch of the Lite2 top); fp32 elsewhere."""
    return choose_precision(device, "auto") == "bf16" and half_dtype(device) == torch.bfloat16


def fit_tops(
    acts: torch.Tensor,
    y: np.ndarray,
    n_classes: int,
    config: FineTuneConfig,
    on_epoch: Callable[[], None] | None = None,
) -> list[_Top]:
    """``config.networks`` tops trained by :func:`fit_top`, one per seed of ``config.member_seeds()``."""
    return [
        fit_top(acts, y, n_classes, replace(config, seed=seed), on_epoch=on_epoch) for seed in config.member_seeds()
    ]


def fit_top(
    acts: torch.Tensor,
    y: np.ndarray,
    n_classes: int,
    config: FineTuneConfig,
    device: torch.device | None = None,
    on_epoch: Callable[[], None] | None = None,
) -> _Top:
    """Train a fresh top (initialised from ``config.seed``) on cached activations ``acts`` (A, N, ...)
    with integer labels ``y`` (N,); every augmentation of every image is one training sample.
    Returns the top in eval mode on CPU."""
    device = device or pick_device(None)
    torch.manual_seed(config.seed)
    top = _new_top(config, n_classes).to(device)
    head = list(top.fc.parameters())
    body = [p for name, p in top.named_parameters() if not name.startswith("fc.")]
    opt = torch.optim.AdamW(
        [{"params": head, "lr": config.lr_head}, {"params": body, "lr": config.lr_body}],
        weight_decay=config.weight_decay,
    )
    A, N = acts.shape[:2]
    steps = config.epochs * -(-A * N // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[config.lr_head, config.lr_body], total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    flat, labels = acts.reshape(A * N, *acts.shape[2:]), torch.as_tensor(np.tile(y, A), dtype=torch.long)
    gen = torch.Generator().manual_seed(config.seed)
    half = _bf16_training(device)
    for _ in range(config.epochs):
        top.train()
        for module in top.modules():  # keep ImageNet BatchNorm statistics
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        for idx in torch.randperm(A * N, generator=gen).split(config.batch_size):
            opt.zero_grad()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=half):
                loss = loss_fn(top(flat[idx].to(device)), labels[idx].to(device))
            loss.backward()
            opt.step()
            sched.step()
        if on_epoch:
            on_epoch()
    return top.cpu().eval()


def predict_proba(tops: Sequence[_Top], acts: torch.Tensor) -> np.ndarray:
    """Class probabilities (N, n_classes) averaged over the tops and the augmentations in ``acts`` (A, N, ...)."""
    with torch.inference_mode():
        return torch.stack([torch.softmax(top(a), 1) for top in tops for a in acts]).mean(0).numpy()


@dataclass
class FineTunedNetwork:
    """Fine-tuned tops (one state dict per network) plus their recipe and, when blended, the
    frozen-feature SVM; the frozen trunk comes from the pretrained weights at prediction time, so the
    saved model holds only the trained layers (~5 MB per Lite2 network)."""

    config: FineTuneConfig
    classes: list[str]
    states: list[dict[str, torch.Tensor]]
    svm: object | None = None  # fitted on backbone logits averaged over SVM_ROTATIONS (classes as strings)
    _tops: list[_Top] | None = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        return {"config": asdict(self.config), "classes": self.classes, "states": self.states, "svm": self.svm}

    def __setstate__(self, saved):
        states = saved["states"] if "states" in saved else [saved["state"]]  # models saved before ensembles
        self.__init__(FineTuneConfig(**saved["config"]), saved["classes"], states, saved["svm"])

    @property
    def tops(self) -> list[_Top]:
        if self._tops is None:
            self._tops = []
            for state in self.states:
                top = _new_top(self.config, len(self.classes))
                top.load_state_dict(state)
                self._tops.append(top.eval())
        return self._tops

    def predict_proba_images(
        self,
        paths: Sequence[str],
        batch_size: int = 32,
        progress: Progress | None = None,
        max_image_pixels: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """(probabilities [n, n_classes] in ``classes`` order, NaN for unreadable files and those
        above ``max_image_pixels``; ok; errors), one row per path in input order, streamed in chunks
        of ``batch_size`` images."""
        size = self.config.size
        proba = np.full((len(paths), len(self.classes)), np.nan)
        ok, errors = np.zeros(len(paths), bool), [None] * len(paths)
        for start in range(0, len(paths), batch_size):
            chunk = slice(start, start + batch_size)
            units, ok[chunk], errors[chunk] = load_units(
                paths[chunk], size, batch_size, max_image_pixels=max_image_pixels
            )
            good = np.flatnonzero(ok[chunk])
            if len(good):
                proba[start + good] = predict_proba(self.tops, trunk_activations(units[good], self.config, TTA))
            if progress:
                progress(min(start + batch_size, len(paths)), len(paths))
        if self.svm is not None and ok.any():
            X, _, _ = features_for([p for p, k in zip(paths, ok) if k], [self.config.backbone], "logits", SVM_ROTATIONS)
            proba[ok] = (proba[ok] + proba_in_order(self.svm, X, self.classes)) / 2
        return proba, ok, errors


def cross_validate(
    acts: torch.Tensor,
    y: np.ndarray,
    classes: Sequence[str],
    auroral: Sequence[str],
    config: FineTuneConfig,
    folds: int = 5,
    X: np.ndarray | None = None,
    on_epoch: Callable[[], None] | None = None,
) -> dict:
    """Stratified ``folds``-fold CV on cached activations (A, N, ...) (``AUGMENTATIONS`` order):
    train on all augmentations of the training images, predict the held-out ones with ``TTA``;
    with frozen features ``X``, also an RBF SVM per fold (C, γ by inner CV) and the mean of both
    probabilities (the headline metrics then). Same folds and keys as
    :func:`tame_assets.ml.classifier.cross_validated_metrics`, plus ``components`` (each part alone)."""
    tta = [AUGMENTATIONS.index(a) for a in TTA]
    names = np.asarray(classes)[y]  # split on the label strings: the same folds as the frozen-feature SVM
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=config.seed).split(names, names))
    parts = {"fine_tuned": np.zeros((len(y), len(classes)))}
    if X is not None:
        parts["frozen_svm"] = np.zeros((len(y), len(classes)))
    for train, test in splits:
        tops = fit_tops(acts[:, train], y[train], len(classes), config, on_epoch=on_epoch)
        parts["fine_tuned"][test] = predict_proba(tops, acts[tta][:, test])
        if X is not None:
            svm, _ = fit_rbf_svm(X[train], names[train], folds - 1, config.seed)
            parts["frozen_svm"][test] = proba_in_order(svm, X[test], classes)

    def score(proba: np.ndarray) -> dict:
        return fold_metrics(names, np.asarray(classes)[proba.argmax(1)], splits, classes, auroral)

    scores = {name: score(p) for name, p in parts.items()}
    headline = score(parts["fine_tuned"] + parts["frozen_svm"]) if X is not None else scores["fine_tuned"]
    kept = ("confusion_matrix", "classes")
    components = {
        name: {k: v for k, v in sc.items() if k.endswith(("_mean", "_std")) or k in kept} for name, sc in scores.items()
    }
    return {"cv_folds": folds, **headline, "components": components}


def fine_tune(
    paths: Sequence[str],
    labels: Sequence[str],
    classes: Sequence[str],
    auroral: Sequence[str],
    config: FineTuneConfig | None = None,
    folds: int = 5,
    fit_final: bool = True,
    oath: bool = False,
    progress: Progress | None = None,
) -> tuple[FineTunedNetwork | None, dict]:
    """Cross-validate the recipe (``folds`` ≥ 2; 0 skips it) and fit it on every image.

    Returns (network fitted on all images, or None when ``fit_final`` is False; CV metrics).
    ``progress(done, total)`` counts trunk passes, the frozen-feature pass and training epochs;
    ``oath``: RGB images, green channel. Unreadable images raise ``ValueError`` naming them (a
    labelled set must be complete); ``config`` None = the default recipe."""
    config = config or FineTuneConfig()
    y = np.array([list(classes).index(label) for label in labels])
    units, ok, errors = load_units(list(paths), config.size, green=oath)
    if not ok.all():
        bad = [e for e in errors if e]
        raise ValueError(f"{len(bad)} labelled image(s) unreadable, e.g. {bad[0]}")
    total = (
        len(AUGMENTATIONS) + int(config.blend_frozen_svm) + config.epochs * config.networks * (folds + int(fit_final))
    )
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    acts = trunk_activations(units, config, progress=lambda _d, _n: tick())
    del units
    X = None
    if config.blend_frozen_svm:
        X = features_for(list(paths), [config.backbone], "logits", SVM_ROTATIONS, oath=oath)[0]
        tick()
    metrics = cross_validate(acts, y, classes, auroral, config, folds, X=X, on_epoch=tick) if folds else {}
    if not fit_final:
        return None, metrics
    tops = fit_tops(acts, y, len(classes), config, on_epoch=tick)
    svm = fit_rbf_svm(X, np.asarray(classes)[y], max(2, folds), config.seed)[0] if X is not None else None
    states = [{k: v.detach().clone() for k, v in top.state_dict().items()} for top in tops]
    return FineTunedNetwork(config, list(classes), states, svm), metrics
