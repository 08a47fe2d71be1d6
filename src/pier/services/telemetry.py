"""Node metrics: scrape every Healthy instance's Prometheus endpoint and label each
series with the node and the instance it came from."""

from __future__ import annotations

import asyncio
import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pier.domain.instance_status import InstanceStatus
from pier.domain.records import endpoint_for_port
from pier.store.repository import Repository

SCRAPE_TIMEOUT_S = 5.0
MODEL_METRICS_PATH = "/metrics"


async def scrape_node(repo: Repository, project: str, node: str) -> str:
    """Prometheus text of all the node's Healthy instances, with node/instance labels."""
    spec = repo.get_node(project, node).spec
    path = spec.telemetry.path or (MODEL_METRICS_PATH if spec.model else None)
    port = spec.metrics_port
    if path is None:
        return f"# node {node} has no metrics path (set telemetry.path)\n"
    targets = [
        (inst, base)
        for inst in repo.list_instances(project, node)
        if inst.status is InstanceStatus.HEALTHY
        and (base := endpoint_for_port(inst.endpoint, inst.port_endpoints, port, spec.port))
    ]
    async with httpx.AsyncClient(timeout=SCRAPE_TIMEOUT_S, trust_env=False) as client:
        texts = await asyncio.gather(*(_scrape(client, f"{base}{path}") for _, base in targets))
    lines: list[str] = []
    for (inst, _), text in zip(targets, texts, strict=True):
        if text is None:
            lines.append(f"# instance {inst.id}: scrape of {path} failed")
            continue
        lines.extend(relabel(text, node=node, instance=inst.id))
    return "\n".join(lines) + "\n"


async def _scrape(client: httpx.AsyncClient, url: str) -> str | None:
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        return None
    return response.text if response.is_success else None


def relabel(text: str, *, node: str, instance: str) -> list[str]:
    """Re-render Prometheus text with ``node`` and ``instance`` labels on every sample."""
    out: list[str] = []
    for family in text_string_to_metric_families(text):
        name = family.name
        if family.type == "counter" and all(s.name == f"{name}_total" for s in family.samples):
            name += "_total"  # the parser strips it; text format 0.0.4 keeps it on TYPE
        if family.documentation:
            out.append(f"# HELP {name} {_escape_help(family.documentation)}")
        out.append(f"# TYPE {name} {family.type}")
        for sample in family.samples:
            labels = {**sample.labels, "node": node, "instance": instance}
            rendered = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            out.append(f"{sample.name}{{{rendered}}} {_number(sample.value)}")
    return out


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))
