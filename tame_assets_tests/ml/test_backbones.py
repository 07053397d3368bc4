"""Backbone registry: real EfficientNet-Lite weights, torchvision models from the hub cache or an
explicit file (never downloaded), feature kinds and the inference-optimised (BN-folded) variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tame_assets.ml import preprocessing as pp
from tame_assets.ml.backbones import (
    WeightsUnavailableError,
    fuse_for_inference,
    list_backbones,
    load_backbone,
    pick_device,
    torchvision_weights_path,
)
from tame_assets.sources.frame_reader import load_frame


def _inputs(paths, size: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([pp.to_network_input(pp.preprocess(load_frame(p), size)[0]) for p in paths]))


@pytest.fixture(scope="module")
def real_images(real_dir):
    images = sorted((real_dir / "uio_asi_nya6" / "images").glob("*.png"))
    return [images[0], images[len(images) // 2]]


@pytest.fixture()
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


def test_lite0_real_weights_are_deterministic_and_not_degenerate(real_images):
    model = load_backbone("efficientnet_lite0", "logits", device="cpu")
    assert (model.name, model.input_size, model.feature_dim, model.feature_kind) == (
        "efficientnet_lite0",
        224,
        1000,
        "logits",
    )
    assert not model.training and load_backbone("efficientnet_lite0", device="cpu") is model  # cached
    x = _inputs(real_images, 224)
    with torch.inference_mode():
        a, b = model(x), model(x)
    assert torch.equal(a, b)
    p = torch.softmax(a, 1)
    # two different sky images: different confident classes/probabilities, far from uniform (1/1000)
    assert abs(p[0].max() - p[1].max()) > 1e-3 and p.max() > 0.02
    assert torch.linalg.norm(a[0] - a[1]) / torch.linalg.norm(a[0]) > 0.05


def test_pooled_features_give_the_logits_through_the_head(real_images):
    pooled_model = load_backbone("efficientnet_lite0", "pooled", device="cpu")
    logits_model = load_backbone("efficientnet_lite0", "logits", device="cpu")
    assert pooled_model.feature_dim == 1280
    x = _inputs(real_images, 224)
    head = pooled_model._head
    with torch.inference_mode():
        pooled, logits = pooled_model(x), logits_model(x)
        torch.testing.assert_close(pooled @ head.weight.T + head.bias, logits, rtol=1e-4, atol=1e-4)


def test_lite_family_sizes_and_availability():
    import torchvision  # here, not at import: it costs ~3 s (torch._dynamo) in every worker

    infos = {b.name: b for b in list_backbones()}
    assert [
        (infos[n].input_size, infos[n].available)
        for n in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
    ] == [(224, True), (240, True), (260, True)]
    assert set(torchvision.models.list_models(module=torchvision.models)) <= set(infos)
    lite1 = load_backbone("efficientnet_lite1", "pooled", device="cpu")
    with torch.inference_mode():
        assert lite1(torch.zeros(1, 3, 240, 240)).shape == (1, lite1.feature_dim)


def test_shufflenet_without_weights_is_a_clear_error(empty_torch_home):
    infos = {b.name: b for b in list_backbones()}
    assert not infos["shufflenet_v2_x1_0"].available and "checkpoints" in infos["shufflenet_v2_x1_0"].reason
    expected = empty_torch_home / "hub" / "checkpoints" / "shufflenetv2_x1-5666bf0f80.pth"
    assert torchvision_weights_path("shufflenet_v2_x1_0") == expected
    with pytest.raises(WeightsUnavailableError) as info:
        load_backbone("shufflenet_v2_x1_0", device="cpu")
    message = str(info.value)
    assert str(expected) in message and "https://download.pytorch.org/models/shufflenetv2_x1-5666bf0f80.pth" in message
    assert "weights_path" in message and not expected.exists()  # nothing was downloaded


def test_available_reflects_a_file_in_the_hub_cache(empty_torch_home):
    path = torchvision_weights_path("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # presence is checked without loading
    infos = {b.name: b for b in list_backbones()}
    assert infos["resnet18"].available and not infos["resnet34"].available


def test_torchvision_model_loads_from_weights_path(tmp_path, empty_torch_home):
    import torchvision  # here, not at import: it costs ~3 s (torch._dynamo) in every worker

    torch.manual_seed(0)
    reference = torchvision.models.get_model("shufflenet_v2_x1_0", weights=None).eval()
    weights = tmp_path / "random_shufflenet.pth"
    torch.save(reference.state_dict(), weights)
    model = load_backbone("shufflenet_v2_x1_0", "pooled", weights_path=weights, device="cpu")
    assert model.input_size == 224 and model.feature_dim == 1024
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        pooled = model(x)
        np.testing.assert_allclose(pooled @ model._head.weight.T + model._head.bias, reference(x), rtol=1e-4, atol=1e-5)


def test_fused_variant_computes_the_same_function(real_images):
    plain = load_backbone("efficientnet_lite0", device="cpu")
    fused = load_backbone("efficientnet_lite0", device="cpu", fused=True)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert (
        fused is not plain and n_bn > 40 and fused.rewrites["bn_folded"] == n_bn and fused.rewrites["pads_folded"] > 0
    )
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = _inputs(real_images, 224)
    with torch.inference_mode():
        torch.testing.assert_close(
            fused(x.contiguous(memory_format=torch.channels_last)), plain(x), rtol=1e-4, atol=1e-4
        )


def test_fuse_for_inference_on_a_torchvision_network():
    import torchvision  # here, not at import: it costs ~3 s (torch._dynamo) in every worker

    torch.manual_seed(1)
    net = torchvision.models.get_model("mobilenet_v3_small", weights=None).eval()
    for m in net.modules():  # non-trivial BN statistics, so folding is really exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        before = net(x)
        counts = fuse_for_inference(net)
        after = net(x)
    assert counts["bn_folded"] == n_bn > 0 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_bad_names_and_kinds():
    with pytest.raises(ValueError, match="unknown backbone 'no_such_net'"):
        load_backbone("no_such_net", device="cpu")
    with pytest.raises(ValueError, match="feature_kind"):
        load_backbone("efficientnet_lite0", "penultimate", device="cpu")
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
