"""The UI's pages and the fragments htmx polls to keep them live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from pier.domain.configurations import CONFIGURATIONS
from pier.domain.specs import ModelFormat
from pier.domain.views import InstanceView, NodeView
from pier.services.logs import node_logs
from pier.ui.calls import request_form
from pier.ui.rendering import render, services_of
from pier.ui.session import SessionDep

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
_N = "/projects/{project}/nodes/{name}"


@dataclass(frozen=True, slots=True)
class RollingUpdate:
    """A rolling update under way: instances still on an older generation."""

    generation: int
    replaced: int
    """Instances of the node's generation that are Healthy."""
    target: int


def rolling_update(node: NodeView, instances: list[InstanceView]) -> RollingUpdate | None:
    """The node's rolling update while one is under way (None: every instance is current)."""
    if all(i.generation == node.generation for i in instances):
        return None
    current = [i for i in instances if i.generation == node.generation]
    healthy = sum(1 for i in current if i.status == "Healthy")
    return RollingUpdate(node.generation, healthy, max(node.instances.target, healthy))


@router.get("/")
def projects_page(request: Request, session: SessionDep) -> HTMLResponse:
    projects = services_of(request).projects.list(session.principal)
    return render(request, "projects.html", session, projects=projects)


@router.get("/projects/{project}")
def project_page(project: str, request: Request, session: SessionDep) -> HTMLResponse:
    services = services_of(request)
    return render(
        request, "project.html", session, project=services.projects.get(project),
        nodes=services.nodes.list(project), aliases=services.aliases.list(project),
    )  # fmt: skip


@router.get("/projects/{project}/nodes-table")
def project_lists(project: str, request: Request, session: SessionDep) -> HTMLResponse:
    services = services_of(request)
    return render(
        request, "_project_lists.html", session, project_name=project,
        nodes=services.nodes.list(project), aliases=services.aliases.list(project),
    )  # fmt: skip


@router.get("/projects/{project}/models")
def models_page(project: str, request: Request, session: SessionDep) -> HTMLResponse:
    models = services_of(request).models
    return render(
        request, "models.html", session, project_name=project, versions=models.list(project),
        formats=list(ModelFormat), max_upload_bytes=models.limits.max_upload_bytes,
    )  # fmt: skip


@router.get("/projects/{project}/nodes/new")
def new_node_page(project: str, request: Request, session: SessionDep) -> HTMLResponse:
    models = sorted({v.name for v in services_of(request).models.list(project)})
    return render(
        request, "node_new.html", session, project_name=project, models=models,
        configurations=list(CONFIGURATIONS), values={}, error=None,
    )  # fmt: skip


@router.get(_N)
def node_page(
    project: str, name: str, request: Request, session: SessionDep, tab: str = "overview"
) -> HTMLResponse:
    services = services_of(request)
    node = services.nodes.get(project, name)
    instances = services.nodes.instances(project, name)
    return render(
        request, "node.html", session, node=node, instances=instances, tab=tab,
        update=rolling_update(node, instances), configurations=list(CONFIGURATIONS),
        form=request_form(services, node) if tab == "request" else None,
    )  # fmt: skip


@router.get(f"{_N}/summary")
def node_summary(project: str, name: str, request: Request, session: SessionDep) -> HTMLResponse:
    services = services_of(request)
    node = services.nodes.get(project, name)
    instances = services.nodes.instances(project, name)
    return render(
        request, "_node_summary.html", session, node=node,
        update=rolling_update(node, instances),
    )  # fmt: skip


@router.get(f"{_N}/instances")
def node_instances(project: str, name: str, request: Request, session: SessionDep) -> HTMLResponse:
    services = services_of(request)
    node = services.nodes.get(project, name)
    instances = services.nodes.instances(project, name)
    return render(request, "_instances.html", session, node=node, instances=instances)


@router.get(f"{_N}/events")
def node_events(project: str, name: str, request: Request, session: SessionDep) -> HTMLResponse:
    services = services_of(request)
    events = services.nodes.events(project, name, limit=services.ui.events, after=None)
    node = services.nodes.get(project, name)
    return render(request, "_events.html", session, node=node, events=events[::-1])


@router.get(f"{_N}/logs")
async def node_log_lines(
    project: str,
    name: str,
    request: Request,
    session: SessionDep,
    instance: str = "",
    q: Annotated[str, Query(max_length=200)] = "",
    follow: str = "",
) -> HTMLResponse:
    """The newest log lines (one instance's, or all merged), those with ``q`` only;
    with ``follow`` the fragment polls for newer ones."""
    services = services_of(request)
    node = services.nodes.get(project, name)
    lines = [
        line
        async for line in node_logs(
            services.repo, services.logs, project, name, instance=instance or None,
            follow=False, tail=services.ui.log_lines,
        )
    ]  # fmt: skip
    if q:
        lines = [line for line in lines if q.lower() in line.lower()]
    return render(
        request, "_logs.html", session, node=node, lines=lines, instance=instance, q=q,
        follow=bool(follow),
    )  # fmt: skip


@router.get("/projects/{project}/aliases/{name}")
def alias_page(project: str, name: str, request: Request, session: SessionDep) -> HTMLResponse:
    services = services_of(request)
    alias = services.aliases.get(project, name)
    sharing = {n.node for n in alias.nodes}
    others = [n.name for n in services.nodes.list(project) if n.name not in sharing]
    return render(request, "alias.html", session, alias=alias, other_nodes=others)


@router.get("/projects/{project}/aliases/{name}/status")
def alias_status(project: str, name: str, request: Request, session: SessionDep) -> HTMLResponse:
    alias = services_of(request).aliases.get(project, name)
    return render(request, "_alias_status.html", session, alias=alias)
