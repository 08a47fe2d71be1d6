"""What the UI changes: signing in and out, models (push), alias shares, and nodes
(create, range, timeout, configuration, suspend, resume, delete), each through the same
service as its REST route, each form's CSRF token checked first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pier.domain.configurations import CONFIGURATIONS
from pier.domain.errors import InvalidSpec, PierError, Unauthorized
from pier.ui.rendering import render, services_of
from pier.ui.session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SessionDep,
    Sessions,
    checked_form,
    checked_upload,
    new_sign_in_csrf,
    set_ui_cookie,
)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
_N = "/projects/{project}/nodes/{name}"


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.ui_sessions
    return sessions


def sign_in_page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    csrf = new_sign_in_csrf()
    page = render(
        request, "sign_in.html", None, sign_in_csrf=csrf, error=error, status_code=status_code
    )
    secure = services_of(request).ui.secure_cookie
    set_ui_cookie(page, SIGN_IN_COOKIE, csrf, secure=secure)
    return page


@router.get("/sign-in")
def show_sign_in(request: Request) -> Response:
    return sign_in_page(request)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """A valid token: the session cookie, then the projects; else the form again, saying why."""
    sessions = _sessions(request)
    form = await sessions.form(request, request.cookies.get(SIGN_IN_COOKIE, ""))
    try:
        sessions.sign_in(form.get("token", ""))
    except Unauthorized:
        return sign_in_page(
            request, error="That token is not valid (unknown, expired or revoked).",
            status_code=401,
        )  # fmt: skip
    answer = RedirectResponse("/", status_code=303)
    secure = services_of(request).ui.secure_cookie
    set_ui_cookie(answer, SESSION_COOKIE, form["token"].strip(), secure=secure)
    answer.delete_cookie(SIGN_IN_COOKIE, path="/")
    return answer


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    await checked_form(request, session)
    answer = RedirectResponse("/sign-in", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer


def _number(form: dict[str, str], name: str, kind: type[int] | type[float]) -> Any:
    value = form.get(name, "").strip()
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidSpec(name, f"{value[:40]!r} is not a number") from None


def spec_from_form(form: dict[str, str]) -> dict[str, Any]:
    """A node spec from the new-node form: a model or an image, and its sizes."""
    spec: dict[str, Any] = {"configuration": form.get("configuration") or "c1.1"}
    for key in ("model", "image"):
        if form.get(key, "").strip():
            spec[key] = form[key].strip()
    for key, kind in (("port", int), ("min_instances", int), ("max_instances", int),
                      ("timeout_s", float)):  # fmt: skip
        value = _number(form, key, kind)
        if value is not None:
            spec[key] = value
    return spec


@router.post("/projects/{project}/nodes")
async def create_node(project: str, request: Request, session: SessionDep) -> Response:
    form = await checked_form(request, session)
    services = services_of(request)
    try:
        name = form.get("name", "").strip()
        node = services.nodes.create(
            project, name, spec_from_form(form), actor=session.principal.name
        )
    except PierError as exc:
        models = sorted({v.name for v in services.models.list(project)})
        return render(
            request, "node_new.html", session, project_name=project, models=models,
            configurations=list(CONFIGURATIONS), values=form, error=exc.message,
            status_code=exc.http_status,
        )  # fmt: skip
    return RedirectResponse(f"/projects/{project}/nodes/{node.name}", status_code=303)


def settings_changes(form: dict[str, str]) -> dict[str, Any]:
    """The merge patch of the node page's settings form (an empty field: unchanged)."""
    changes: dict[str, Any] = {}
    for key, kind in (("min_instances", int), ("max_instances", int), ("timeout_s", float)):
        value = _number(form, key, kind)
        if value is not None:
            changes[key] = value
    if form.get("configuration"):
        changes["configuration"] = form["configuration"]
    return changes


@router.post(f"{_N}/settings")
async def update_node(project: str, name: str, request: Request, session: SessionDep) -> Response:
    """Apply the settings form; a change of what instances are made of rolls them."""
    form = await checked_form(request, session)
    services = services_of(request)
    spec = services.nodes.get(project, name).spec
    current = {**spec.model_dump(mode="json"), "max_instances": spec.effective_max}
    changes = {k: v for k, v in settings_changes(form).items() if current.get(k) != v}
    if not changes:
        return render(request, "_flash.html", session, message="Nothing to change.")
    node = services.nodes.update(project, name, changes, actor=session.principal.name)
    fields = ", ".join(sorted(changes))
    return render(request, "_flash.html", session, message=f"Node {node.name} updated: {fields}.")


@router.post(f"{_N}/suspend")
async def suspend_node(project: str, name: str, request: Request, session: SessionDep) -> Response:
    await checked_form(request, session)
    services_of(request).nodes.suspend(project, name, actor=session.principal.name)
    return render(request, "_flash.html", session, message=f"Node {name} is being suspended.")


@router.post(f"{_N}/resume")
async def resume_node(project: str, name: str, request: Request, session: SessionDep) -> Response:
    await checked_form(request, session)
    services_of(request).nodes.resume(project, name, actor=session.principal.name)
    return render(request, "_flash.html", session, message=f"Node {name} is resuming.")


@router.post(f"{_N}/delete")
async def delete_node(project: str, name: str, request: Request, session: SessionDep) -> Response:
    """Delete once the form repeats the node's name (the confirmation)."""
    form = await checked_form(request, session)
    if form.get("confirm", "").strip() != name:
        raise InvalidSpec("confirm", f"type the node's name ({name}) to delete it")
    services_of(request).nodes.delete(project, name, actor=session.principal.name)
    return Response(status_code=200, headers={"HX-Redirect": f"/projects/{project}"})


@router.post("/projects/{project}/models")
async def push_model(
    project: str,
    request: Request,
    session: SessionDep,
    name: Annotated[str, Query(max_length=200)],
    format: Annotated[str, Query(max_length=40)],
    trust: bool = False,
) -> Response:
    """A model file from the Models page: its raw body (pier.js sends the chosen file, the
    CSRF token in ``X-CSRF-Token``) streamed to the model service as the REST push is,
    bounded by ``models.max_upload_bytes`` (told by Content-Length before reading)."""
    checked_upload(request, session)
    length = request.headers.get("content-length", "")
    version = await services_of(request).models.push(
        project, name.strip(), request.stream(), fmt=format, trust=trust,
        actor=session.principal.name, declared_bytes=int(length) if length.isdigit() else None,
    )  # fmt: skip
    message = f"Model {version.name} v{version.version} pushed ({version.format})."
    return render(request, "_flash.html", session, message=message)


SHARE_PREFIX = "share."


def shares_from_form(form: dict[str, str]) -> list[dict[str, Any]]:
    """The alias's nodes from its shares editor: ``share.NODE`` fields in their order, and
    a node added with ``add_node`` and ``add_share``; a share that is no whole number is
    refused naming its field (the sum of 100 is the alias spec's own check)."""
    shares = {k.removeprefix(SHARE_PREFIX): k for k in form if k.startswith(SHARE_PREFIX)}
    added = form.get("add_node", "").strip()
    if added:
        shares[added] = "add_share"
    nodes = []
    for node, key in shares.items():
        share = _number(form, key, int)
        if share is None:
            raise InvalidSpec(key, f"give {node} a share (a whole percent, 0-100)")
        nodes.append({"node": node, "share": share})
    return nodes


@router.post("/projects/{project}/aliases/{name}/shares")
async def set_shares(project: str, name: str, request: Request, session: SessionDep) -> Response:
    """The alias's traffic shares from its editor (summing to 100, else refused)."""
    form = await checked_form(request, session)
    nodes = shares_from_form(form)
    alias = services_of(request).aliases.update(
        project, name, {"nodes": nodes}, actor=session.principal.name
    )
    shares = ", ".join(f"{n.node}={n.share}%" for n in alias.nodes)
    return render(request, "_flash.html", session, message=f"Alias {name}: {shares}.")
