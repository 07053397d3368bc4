"""Op tags of GPU steps, set where the CNN assets are defined (``@asset(op_tags=GPU_OP_TAGS)``).

Read by the Kubernetes executor (:mod:`tame_assets.defs.k8s`): a ``dagster-k8s/config`` tag asking
for one NVIDIA GPU on a GPU node, and ``tame/gpu=true`` for the per-run GPU concurrency limit.
Other executors ignore them.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

GPU_TAG = "tame/gpu"
K8S_CONFIG_TAG = "dagster-k8s/config"
#: Asset kind marking the CNN (torch) assets that get a GPU by default.
GPU_KIND = "pytorch"

#: Node selector of GPU step pods (label set by NVIDIA's GPU feature discovery / GPU operator).
DEFAULT_GPU_NODE_SELECTOR: dict[str, str] = {"nvidia.com/gpu.present": "true"}
#: Toleration for GPU nodes tainted ``nvidia.com/gpu:NoSchedule`` (as on GKE, EKS and AKS GPU pools).
DEFAULT_GPU_TOLERATIONS: list[dict[str, str]] = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
]
#: Requests/limits of a GPU step: one GPU, CPU for the image-decoding workers, memory for batches.
DEFAULT_GPU_RESOURCES: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "4", "memory": "8Gi"},
    "limits": {"nvidia.com/gpu": 1, "memory": "16Gi"},
}


def gpu_k8s_config(
    node_selector: Mapping[str, str] | None = None,
    tolerations: Iterable[Mapping[str, str]] | None = None,
    resources: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """``dagster-k8s/config`` value (dagster-k8s' snake_case schema) for a one-GPU step pod."""
    return {
        "container_config": {"resources": dict(resources or DEFAULT_GPU_RESOURCES)},
        "pod_spec_config": {
            "node_selector": dict(DEFAULT_GPU_NODE_SELECTOR if node_selector is None else node_selector),
            "tolerations": [dict(t) for t in (DEFAULT_GPU_TOLERATIONS if tolerations is None else tolerations)],
        },
    }


def gpu_op_tags(
    node_selector: Mapping[str, str] | None = None,
    tolerations: Iterable[Mapping[str, str]] | None = None,
    resources: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """Op tags of a one-GPU step (``@asset(op_tags=...)``): the k8s config (JSON) and ``tame/gpu=true``."""
    return {K8S_CONFIG_TAG: json.dumps(gpu_k8s_config(node_selector, tolerations, resources)), GPU_TAG: "true"}


#: Tags the CNN assets are defined with (the default GPU pool).
GPU_OP_TAGS = gpu_op_tags()
