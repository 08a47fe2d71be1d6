"""The node page's request tab: a form for a test request, sent through the gateway as
any caller's would be (with the signed-in token), and the same request as a `curl`
command and a Python snippet.

A model node's form comes from its model's V2 metadata: one field per input, with its
datatype and shape, prefilled with an example; an image node's is method, path, headers
and body.
"""

from __future__ import annotations

import contextlib
import json
import math
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pier.api.deps import Services
from pier.domain.errors import BadRequest
from pier.domain.views import NodeView
from pier.ui.rendering import render, services_of
from pier.ui.session import SessionDep, checked_form

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
NUMPY_TYPES: Final = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
    "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}  # fmt: skip
TOKEN_HINT: Final = "$PIER_TOKEN"
"""Snippets name the token by this variable: its value never appears on a page."""


@dataclass(frozen=True, slots=True)
class TensorField:
    name: str
    datatype: str
    shape: list[int]
    example: str
    """The prefilled data: a JSON array with as many values as the shape holds."""


@dataclass(frozen=True, slots=True)
class RequestForm:
    kind: str
    model: str | None = None
    inputs: list[TensorField] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    methods: tuple[str, ...] = METHODS


@dataclass(frozen=True, slots=True)
class TestRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def example_values(datatype: str, shape: list[int]) -> list[Any]:
    """Values for a tensor of ``shape`` (a variable dimension taken as 1)."""
    count = math.prod(max(1, d) for d in shape)
    value: Any = {"BOOL": False, "BYTES": "text"}.get(datatype, 1)
    if datatype.startswith("FP"):
        value = 1.0
    return [value] * count


def request_form(services: Services, node: NodeView) -> RequestForm:
    """The request tab's form for ``node``."""
    if node.kind != "model" or node.spec.model is None:
        return RequestForm(kind="image")
    versions = services.models.list(node.project, node.spec.model)
    wanted = node.spec.model_version or max((v.version for v in versions), default=0)
    metadata = next((v.metadata for v in versions if v.version == wanted), {})
    inputs = []
    for tensor in metadata.get("inputs", []):
        shape = [max(1, int(d)) for d in tensor.get("shape", [])]
        datatype = str(tensor.get("datatype", "FP32"))
        inputs.append(
            TensorField(
                tensor["name"], datatype, shape, json.dumps(example_values(datatype, shape))
            )
        )
    return RequestForm(
        kind="model", model=node.spec.model, inputs=inputs, outputs=metadata.get("outputs", [])
    )


def node_url(services: Services, node: NodeView) -> str:
    return f"{services.gateway_url}/{node.project}/nodes/{node.name}"


def model_request(base: str, model: str, form: dict[str, str]) -> TestRequest:
    """The V2 inference request the model form describes."""
    inputs = []
    for key, datatype in form.items():
        if not key.startswith("datatype:"):
            continue
        name = key.removeprefix("datatype:")
        try:
            shape = [int(d) for d in json.loads(form.get(f"shape:{name}", "[]"))]
            data = json.loads(form.get(f"data:{name}", "[]"))
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"input {name}: shape and data must be JSON arrays ({exc})") from None
        inputs.append({"name": name, "shape": shape, "datatype": datatype, "data": data})
    body = json.dumps({"inputs": inputs}).encode()
    return TestRequest(
        "POST", f"{base}/v2/models/{model}/infer", {"Content-Type": "application/json"}, body
    )


def image_request(base: str, form: dict[str, str]) -> TestRequest:
    """The HTTP request the image form describes."""
    method = form.get("method", "GET").upper()
    if method not in METHODS:
        raise BadRequest(f"method must be one of {', '.join(METHODS)}")
    path = form.get("path", "/").strip() or "/"
    if not path.startswith("/"):
        path = "/" + path
    headers = {}
    for line in form.get("headers", "").splitlines():
        name, sep, value = line.partition(":")
        if line.strip() and not sep:
            raise BadRequest(f"header line {line.strip()[:60]!r} is not 'Name: value'")
        if line.strip():
            headers[name.strip()] = value.strip()
    return TestRequest(method, base + path, headers, form.get("body", "").encode())


def curl_command(call: TestRequest) -> str:
    parts = [f"curl -sS -X {call.method} {shlex.quote(call.url)}"]
    parts.append(f'-H "Authorization: Bearer {TOKEN_HINT}"')
    parts += [f"-H {shlex.quote(f'{k}: {v}')}" for k, v in call.headers.items()]
    if call.body:
        parts.append(f"--data-raw {shlex.quote(call.body.decode(errors='replace'))}")
    return " \\\n  ".join(parts)


def python_snippet(call: TestRequest, model: str | None, base: str) -> str:
    """tritonclient for a model node, httpx for an image node."""
    if model is None:
        return "\n".join([
            "import os", "", "import httpx", "",
            'headers = {"Authorization": "Bearer " + os.environ["PIER_TOKEN"]}',
            *(f"headers[{k!r}] = {v!r}" for k, v in call.headers.items()),
            f"answer = httpx.request({call.method!r}, {call.url!r}, headers=headers"
            + (f", content={call.body.decode(errors='replace')!r})" if call.body else ")"),
            "print(answer.status_code, answer.text)",
        ])  # fmt: skip
    lines = [
        "import os", "", "import numpy as np", "import tritonclient.http as httpclient", "",
        f"client = httpclient.InferenceServerClient({base.split('://', 1)[-1]!r})",
        'headers = {"Authorization": "Bearer " + os.environ["PIER_TOKEN"]}', "inputs = []",
    ]  # fmt: skip
    for tensor in json.loads(call.body)["inputs"]:
        dtype = NUMPY_TYPES.get(tensor["datatype"], "float32")
        lines += [
            f"tensor = httpclient.InferInput({tensor['name']!r}, {tensor['shape']!r}, "
            f"{tensor['datatype']!r})",
            f"tensor.set_data_from_numpy(np.array({tensor['data']!r}, dtype=np.{dtype})"
            f".reshape({tensor['shape']!r}))",
            "inputs.append(tensor)",
        ]
    lines += [
        f"result = client.infer({model!r}, inputs, headers=headers)",
        'print(result.get_response()["outputs"])',
    ]
    return "\n".join(lines)


def shown_body(content: bytes, limit: int) -> tuple[str, bool]:
    """The response body as text (JSON indented), and whether it was cut at ``limit``."""
    cut = len(content) > limit
    text = content[:limit].decode(errors="replace")
    if not cut:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(content), indent=2)
    return text, cut


@router.post("/projects/{project}/nodes/{name}/request")
async def send_request(
    project: str, name: str, request: Request, session: SessionDep
) -> HTMLResponse:
    """Send the form's request through the gateway and show what came back."""
    form = await checked_form(request, session)
    services = services_of(request)
    node = services.nodes.get(project, name)
    base = node_url(services, node)
    model = node.spec.model if node.kind == "model" else None
    call = model_request(base, model, form) if model else image_request(base, form)
    headers = {"Authorization": f"Bearer {session.token}", **call.headers}
    started = time.perf_counter()
    async with httpx.AsyncClient(trust_env=False, timeout=node.spec.timeout_s + 5) as client:
        try:
            answer = await client.request(call.method, call.url, headers=headers, content=call.body)
        except httpx.HTTPError as exc:
            raise BadRequest(f"the gateway did not answer: {type(exc).__name__}") from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    body, cut = shown_body(answer.content, services.ui.max_response_bytes)
    return render(
        request, "_call_result.html", session, status=answer.status_code,
        elapsed_ms=elapsed_ms, body=body, cut=cut, curl=curl_command(call),
        python=python_snippet(call, model, base),
        content_type=answer.headers.get("content-type", ""),
    )  # fmt: skip
