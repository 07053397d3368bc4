"""Kubernetes flavour of the code location: every step in its own pod, GPUs for the CNN steps.

``build_k8s_definitions(base_defs)`` returns a copy of a ``Definitions`` object with

- ``dagster_k8s.k8s_job_executor`` as the default executor: each step (an asset materialization,
  i.e. one asset × one monthly partition per run) runs as its own Kubernetes Job/pod, at most
  ``max_concurrent`` pods at a time per run, and at most ``gpu_concurrency`` GPU steps per run;
  every step pod gets ``cpu_resources`` unless its own tags say otherwise;
- a ``dagster-k8s/config`` op tag on the GPU assets (by default every asset of kind ``pytorch``:
  the CNN feature extraction) requesting ``nvidia.com/gpu: 1`` with a node selector and a
  toleration for tainted GPU nodes, plus the tag ``tame/gpu=true`` used for the concurrency limit.

Runs themselves are launched by the ``K8sRunLauncher`` configured in the Helm chart
(``deploy/helm/values.yaml``), one run per partition when backfilling. The code location is
``dagster api grpc -m tame_assets.k8s -a defs`` (``defs`` is built on first access from
``tame_assets.definitions.defs``; ``$TAME_K8S_MAX_CONCURRENT`` and ``$TAME_K8S_GPU_CONCURRENCY``
override the limits). Plain Python apart from Dagster: no cluster is contacted when loading.

Note: Dagster has no public API to add op tags to an existing asset, so :func:`with_op_tags`
rebuilds the asset's op the way Dagster's own ``with_replaced_properties`` does (internal
constructors of the pinned dagster 1.13.27; covered by ``tame_assets_tests/test_k8s_deploy.py``).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping

from dagster import AssetsDefinition, Definitions, In, OpDefinition, Out

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
#: Requests/limits of every other step pod (parsing, DuckDB merges, scikit-learn).
DEFAULT_CPU_RESOURCES: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "1", "memory": "2Gi"},
    "limits": {"memory": "6Gi"},
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


def with_op_tags(assets_def: AssetsDefinition, tags: Mapping[str, Any]) -> AssetsDefinition:
    """Copy of an op-backed ``assets_def`` whose op carries ``tags`` in addition to its own.

    Dict values are JSON-encoded (as ``@asset(op_tags=...)`` does), so the k8s executor reads them.
    """
    op = assets_def.op  # raises for graph-backed assets
    merged = {**op.tags, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()}}
    new_op = OpDefinition.dagster_internal_init(
        name=op.name,
        ins={d.name: In.from_definition(d) for d in op.input_defs},
        outs={d.name: Out.from_definition(d) for d in op.output_defs},
        compute_fn=op.compute_fn,
        config_schema=op.config_schema,
        description=op.description,
        tags=merged,
        required_resource_keys=op.required_resource_keys,
        code_version=op.version,
        retry_policy=op.retry_policy,
        version=None,
        pool=op.pool,
    )
    return AssetsDefinition.dagster_internal_init(**{**assets_def.get_attributes_dict(), "node_def": new_op})


def is_gpu_asset(assets_def: AssetsDefinition, gpu_assets: Iterable[str] | None = None) -> bool:
    """Whether an asset gets a GPU: its key is in ``gpu_assets`` or (default) it is of kind pytorch."""
    if gpu_assets is not None:
        names = set(gpu_assets)
        return any(k.to_user_string() in names for k in assets_def.keys)
    return any(GPU_KIND in spec.kinds for spec in assets_def.specs)


def k8s_executor_config(
    max_concurrent: int = 8,
    gpu_concurrency: int = 1,
    cpu_resources: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Config of ``k8s_job_executor``: pod limits per run and default step resources."""
    if max_concurrent < 1 or gpu_concurrency < 1:
        raise ValueError(f"max_concurrent ({max_concurrent}) and gpu_concurrency ({gpu_concurrency}) must be ≥ 1")
    return {
        "max_concurrent": int(max_concurrent),
        "tag_concurrency_limits": [{"key": GPU_TAG, "value": "true", "limit": int(gpu_concurrency)}],
        "step_k8s_config": {"container_config": {"resources": dict(cpu_resources or DEFAULT_CPU_RESOURCES)}},
        "enable_owner_references": True,  # step pods are garbage-collected with their run pod
    }


def build_k8s_definitions(
    base_defs: Definitions,
    *,
    max_concurrent: int = 8,
    gpu_concurrency: int = 1,
    gpu_assets: Iterable[str] | None = None,
    gpu_node_selector: Mapping[str, str] | None = None,
    gpu_tolerations: Iterable[Mapping[str, str]] | None = None,
    gpu_resources: Mapping[str, Mapping[str, Any]] | None = None,
    cpu_resources: Mapping[str, Mapping[str, Any]] | None = None,
) -> Definitions:
    """``base_defs`` with the k8s step executor and GPU tags on the GPU assets (see module doc).

    ``gpu_assets``: asset keys (``"asim_features"``) to give a GPU; default: every asset of kind
    ``pytorch``. Unknown names raise ``ValueError``. Jobs that set their own executor keep it.
    """
    from dagster_k8s import k8s_job_executor

    assets = list(base_defs.assets or [])
    if gpu_assets is not None:
        gpu_assets = list(gpu_assets)
        known = {k.to_user_string() for a in assets if isinstance(a, AssetsDefinition) for k in a.keys}
        unknown = sorted(set(gpu_assets) - known)
        if unknown:
            raise ValueError(f"gpu_assets not in the definitions: {unknown}")
    gpu_tags = {
        K8S_CONFIG_TAG: gpu_k8s_config(gpu_node_selector, gpu_tolerations, gpu_resources),
        GPU_TAG: "true",
    }
    new_assets = [
        with_op_tags(a, gpu_tags) if isinstance(a, AssetsDefinition) and a.is_executable and is_gpu_asset(a, gpu_assets) else a
        for a in assets
    ]
    executor = k8s_job_executor.configured(
        k8s_executor_config(max_concurrent, gpu_concurrency, cpu_resources), name="tame_k8s"
    )
    return Definitions(
        assets=new_assets,
        asset_checks=base_defs.asset_checks,
        jobs=base_defs.jobs,
        schedules=base_defs.schedules,
        sensors=base_defs.sensors,
        resources=base_defs.resources,
        loggers=base_defs.loggers,
        metadata=base_defs.metadata,
        executor=executor,
    )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"${name} must be an integer, not {raw!r}") from exc


def __getattr__(name: str) -> Definitions:
    """``tame_assets.k8s.defs``: the project's Definitions, k8s-flavoured (built on first access)."""
    if name != "defs":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from tame_assets.definitions import defs as base

    built = build_k8s_definitions(
        base,
        max_concurrent=_env_int("TAME_K8S_MAX_CONCURRENT", 8),
        gpu_concurrency=_env_int("TAME_K8S_GPU_CONCURRENCY", 1),
    )
    globals()["defs"] = built
    return built
