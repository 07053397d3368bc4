"""Kubernetes flavour of the code location: every step in its own pod, GPUs for the CNN steps.

``build_k8s_definitions(base_defs)`` returns a copy of a ``Definitions`` object with

- ``dagster_k8s.k8s_job_executor`` as the default executor: each step (an asset materialization,
  i.e. one asset × one monthly partition per run) runs as its own Kubernetes Job/pod, at most
  ``max_concurrent`` pods at a time per run, and at most ``gpu_concurrency`` GPU steps per run;
  every step pod gets ``cpu_resources`` unless its own tags say otherwise;
- GPU steps: every asset of kind ``pytorch`` (the CNN feature extraction) is *defined* with
  ``op_tags=GPU_OP_TAGS`` — a ``dagster-k8s/config`` tag requesting ``nvidia.com/gpu: 1`` with a
  node selector and a toleration for tainted GPU nodes, plus ``tame/gpu=true`` for the concurrency
  limit. Other GPU assets or another GPU pool are the executor's ``per_step_k8s_config`` (which
  dagster-k8s merges over the op tags), so no definition is rebuilt.

Runs themselves are launched by the ``K8sRunLauncher`` configured in the Helm chart
(``deploy/helm/values.yaml``), one run per partition when backfilling. The code location is
``dagster api grpc -m tame_assets.defs.k8s -a defs`` (``defs`` is built on first access from
``tame_assets.defs.definitions.defs``; the limits are the settings ``[kubernetes] max_concurrent`` and
``gpu_concurrency`` of ``tame.toml``, found as everywhere: ``$TAME_CONFIG`` or ``./tame.toml``).
Plain Python apart from Dagster: no cluster is contacted when loading.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from dagster import AssetsDefinition, Definitions

from tame_assets.config import load_settings
from tame_assets.defs.tags import GPU_KIND, GPU_TAG, gpu_k8s_config

#: Requests/limits of every other step pod (parsing, DuckDB merges, scikit-learn).
DEFAULT_CPU_RESOURCES: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "1", "memory": "2Gi"},
    "limits": {"memory": "6Gi"},
}


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
    per_step: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Config of ``k8s_job_executor``: pod limits per run, default step resources and per-step
    overrides (op name → k8s config, merged over the op's own tags)."""
    if max_concurrent < 1 or gpu_concurrency < 1:
        raise ValueError(f"max_concurrent ({max_concurrent}) and gpu_concurrency ({gpu_concurrency}) must be ≥ 1")
    return {
        "max_concurrent": int(max_concurrent),
        "tag_concurrency_limits": [{"key": GPU_TAG, "value": "true", "limit": int(gpu_concurrency)}],
        "step_k8s_config": {"container_config": {"resources": dict(cpu_resources or DEFAULT_CPU_RESOURCES)}},
        "per_step_k8s_config": {name: dict(config) for name, config in (per_step or {}).items()},
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
    """``base_defs`` with the k8s step executor (see module doc); the assets are passed through unchanged.

    ``gpu_assets``: asset keys (``"asim_features"``) to give a GPU besides the ``pytorch`` assets
    (which carry :data:`GPU_OP_TAGS`); unknown names raise ``ValueError``. ``gpu_node_selector``,
    ``gpu_tolerations``, ``gpu_resources``: another GPU pool for all GPU steps. Both become
    ``per_step_k8s_config`` entries, which dagster-k8s merges into the op tags (node selectors add
    up: a tagged asset needs both its tag's and the custom labels). Jobs that set their own executor keep it.
    """
    from dagster_k8s import k8s_job_executor

    assets = list(base_defs.assets or [])
    if gpu_assets is not None:
        gpu_assets = list(gpu_assets)
        known = {k.to_user_string() for a in assets if isinstance(a, AssetsDefinition) for k in a.keys}
        unknown = sorted(set(gpu_assets) - known)
        if unknown:
            raise ValueError(f"gpu_assets not in the definitions: {unknown}")
    custom_pool = any(v is not None for v in (gpu_node_selector, gpu_tolerations, gpu_resources))
    per_step = {
        a.op.name: gpu_k8s_config(gpu_node_selector, gpu_tolerations, gpu_resources)
        for a in assets
        if isinstance(a, AssetsDefinition)
        and a.is_executable
        and ((gpu_assets is not None and is_gpu_asset(a, gpu_assets)) or (custom_pool and is_gpu_asset(a)))
    }
    executor = k8s_job_executor.configured(
        k8s_executor_config(max_concurrent, gpu_concurrency, cpu_resources, per_step), name="tame_k8s"
    )
    return Definitions(
        assets=assets,
        asset_checks=base_defs.asset_checks,
        jobs=base_defs.jobs,
        schedules=base_defs.schedules,
        sensors=base_defs.sensors,
        resources=base_defs.resources,
        loggers=base_defs.loggers,
        metadata=base_defs.metadata,
        executor=executor,
    )


def __getattr__(name: str) -> Definitions:
    """``tame_assets.defs.k8s.defs``: the project's Definitions, k8s-flavoured (built on first access)."""
    if name != "defs":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from tame_assets.defs.definitions import defs as base

    settings = load_settings()
    built = build_k8s_definitions(
        base,
        max_concurrent=settings.k8s_max_concurrent,
        gpu_concurrency=settings.k8s_gpu_concurrency,
    )
    globals()["defs"] = built
    return built
