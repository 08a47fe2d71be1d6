from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from pier.api.deps import ActorDep, ServicesDep
from pier.services.logs import node_logs
from pier.services.telemetry import scrape_node

router = APIRouter(prefix="/api/v1/projects/{project}/nodes", tags=["nodes"])


class NodeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    spec: dict[str, Any]


class NodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: dict[str, Any]


@router.post("", status_code=201)
def create_node(
    project: str, body: NodeCreate, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    """Create a node from a model or an image; the controller starts its instances."""
    return services.nodes.create(project, body.name, body.spec, actor=actor)


@router.get("")
def list_nodes(project: str, services: ServicesDep) -> dict[str, Any]:
    return {"nodes": services.nodes.list(project)}


@router.get("/{name}")
def get_node(project: str, name: str, services: ServicesDep) -> dict[str, Any]:
    return services.nodes.get(project, name)


@router.patch("/{name}")
def update_node(
    project: str, name: str, body: NodeUpdate, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    """Change the spec; instances are replaced honouring maintenance_limit."""
    return services.nodes.update(project, name, body.spec, actor=actor)


@router.delete("/{name}", status_code=202)
def delete_node(project: str, name: str, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    """Mark the node Deleting; it disappears once its instances are gone."""
    return services.nodes.delete(project, name, actor=actor)


@router.get("/{name}/instances")
def list_instances(project: str, name: str, services: ServicesDep) -> dict[str, Any]:
    return {"instances": services.nodes.instances(project, name)}


@router.get("/{name}/stats")
async def get_stats(project: str, name: str, services: ServicesDep) -> dict[str, Any]:
    """CPU and memory of each instance, as the runtime measures them now."""
    instances = services.nodes.instances(project, name)
    measured = await asyncio.gather(*(services.stats.stats(i["id"]) for i in instances))
    return {
        "instances": [
            {"id": i["id"], "status": i["status"], "cpu_percent": cpu, "memory_bytes": memory}
            for i, (cpu, memory) in zip(instances, measured, strict=True)
        ]
    }


@router.get("/{name}/events")
def list_events(
    project: str,
    name: str,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    after: Annotated[
        int | None,
        Query(ge=0, description="An event id: only the events after it, oldest first."),
    ] = None,
) -> dict[str, Any]:
    """The newest ``limit`` events, oldest first; with ``after``, the first ``limit`` events
    after that one (poll with the last id seen to follow a node)."""
    return {"events": services.nodes.events(project, name, limit=limit, after=after)}


@router.get("/{name}/logs", response_class=StreamingResponse)
async def get_logs(
    project: str,
    name: str,
    services: ServicesDep,
    instance: str | None = None,
    follow: bool = False,
    tail: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    """Instance logs as text lines; ``follow`` keeps the response open for new lines."""
    lines = node_logs(
        services.repo, services.logs, project, name, instance=instance, follow=follow, tail=tail
    )
    first = await anext(lines, None)  # raise NotFound before the 200 is sent

    async def body() -> Any:
        if first is not None:
            yield first + "\n"
            async for line in lines:
                yield line + "\n"

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


@router.get("/{name}/metrics", response_class=PlainTextResponse)
async def get_metrics(project: str, name: str, services: ServicesDep) -> PlainTextResponse:
    """Prometheus text scraped from the node's Healthy instances, labelled node/instance."""
    text = await scrape_node(services.repo, project, name)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
