"""The web UI's guards over plain HTTP against a real `pier up`: the sign-in cookie's
flags, a wrong token refused, CSRF refusals, the roles policy, the Content-Security-
Policy with no inline script, the browser libraries served (or their absence told), and
a model pushed from the Models page."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pier.ui.assets import VENDOR_FILES, missing_assets
from pier.ui.rendering import templates
from tests.conftest import IrisModel, PierProcess, running_pier

pytestmark = pytest.mark.e2e
PAGES = ("/sign-in", "/", "/projects/default", "/projects/default/models",
         "/projects/default/nodes/new")  # fmt: skip
GHOST = "/projects/default/nodes/ghost/suspend"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierProcess]:
    with running_pier(tmp_path_factory.mktemp("ui-http") / "data", timeout_s=90) as pier:
        yield pier


def browser(up: PierProcess) -> httpx.Client:
    return httpx.Client(base_url=up.url, trust_env=False, timeout=30, follow_redirects=False)


def hidden_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    form = client.get("/sign-in")
    return client.post("/sign-in", data={"csrf": hidden_csrf(form.text), "token": token})


@contextlib.contextmanager
def signed_in(up: PierProcess, token: str | None = None) -> Iterator[tuple[httpx.Client, str]]:
    """A client holding the session cookie, and the CSRF token its pages carry."""
    with browser(up) as client:
        assert sign_in(client, token or up.token).status_code == 303
        yield client, hidden_csrf(client.get("/").text)


def test_sign_in_sets_an_httponly_strict_cookie(up: PierProcess) -> None:
    with browser(up) as client:
        answer = sign_in(client, up.token)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if "pier_session=" in c)
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= flags
        assert "Projects" in client.get("/").text


def test_a_wrong_token_is_refused_with_a_message(up: PierProcess) -> None:
    with browser(up) as client:
        answer = sign_in(client, "pier_not-a-token")
        assert answer.status_code == 401
        assert "not valid" in answer.text
        assert "pier_session" not in answer.headers.get("set-cookie", "")
        assert client.get("/").headers["location"] == "/sign-in"


def test_a_change_without_its_csrf_token_is_refused(up: PierProcess) -> None:
    with browser(up) as client:
        client.get("/sign-in")
        refused = client.post("/sign-in", data={"token": up.token})
        assert refused.status_code == 403 and "CSRF" in refused.text
    with signed_in(up) as (client, csrf):
        assert client.post(GHOST).status_code == 403
        wrong = client.post(GHOST, data={"csrf": "0" * 64})
        assert wrong.status_code == 403 and "CSRF" in wrong.text
        by_header = client.post(GHOST, headers={"X-CSRF-Token": "0" * 64, "HX-Request": "true"})
        assert "CSRF" in by_header.text and by_header.headers["hx-retarget"] == "#flash"
        passed = client.post(GHOST, data={"csrf": csrf})
        assert passed.status_code == 404 and "ghost" in passed.text  # past the CSRF check


def test_a_viewer_may_read_but_not_change(up: PierProcess) -> None:
    with up.api() as api:
        made = api.post("/api/v1/projects/default/tokens", json={"role": "viewer"})
    with signed_in(up, made.json()["token"]) as (client, csrf):
        assert client.get("/projects/default").status_code == 200
        refused = client.post(GHOST, data={"csrf": csrf})
        assert refused.status_code == 403 and "permits write" in refused.text
        assert client.get("/projects/default/nodes/new").status_code == 403
        signed_out = client.post("/sign-out", data={"csrf": csrf})
        assert signed_out.status_code == 303 and signed_out.headers["location"] == "/sign-in"


def test_pages_have_a_csp_without_inline_script(up: PierProcess) -> None:
    with signed_in(up) as (client, _):
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 200, path
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe" not in policy
            assert answer.headers["x-frame-options"] == "DENY"
            scripts = re.findall(r"<script\b([^>]*)>", answer.text)
            assert scripts and all("src=" in attributes for attributes in scripts), path
            assert not re.search(r"\son[a-z]+\s*=", answer.text), path


def test_the_browser_libraries_are_served(up: PierProcess) -> None:
    with browser(up) as client:
        for name in VENDOR_FILES:
            assert client.get(f"/static/vendor/{name}").status_code == 200, name
        assert "assets-missing" not in client.get("/sign-in").text


def test_a_page_without_the_libraries_says_so(tmp_path: Path) -> None:
    assert missing_assets(tmp_path) == list(VENDOR_FILES)
    page = templates.get_template("sign_in.html").render(
        missing_assets=missing_assets(tmp_path), csrf_field="csrf", htmx_headers="{}"
    )
    assert "browser libraries are missing" in page and "make install" in page


def test_errors_outside_the_ui_stay_json(up: PierProcess) -> None:
    with browser(up) as client:
        for path in ("/metrics", "/api/v1/projects"):
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert answer.json()["error"]["code"] == "unauthorized", path
        page = client.get("/projects/default", headers={"cookie": "pier_session=wrong"})
        assert page.status_code == 303 and page.headers["location"] == "/sign-in"


def read_answer(raw: socket.socket) -> str:
    """What the server sent until its page ends or it closes the connection."""
    received = b""
    while b"</html>" not in received and (chunk := raw.recv(65536)):
        received += chunk
    return received.decode(errors="replace")


def test_a_model_pushed_from_the_models_page_needs_its_csrf_header_and_the_size_limit(
    up: PierProcess, iris_onnx: IrisModel
) -> None:
    """The Models page's push: the raw file with the page's CSRF token in X-CSRF-Token;
    without it 403; past models.max_upload_bytes by Content-Length, 413 before the body
    is read (a raw request that declares 5 GiB and sends nothing)."""
    push = "/projects/default/models?name=iris-ui&format=onnx"
    body = iris_onnx.path.read_bytes()
    with signed_in(up) as (client, csrf):
        refused = client.post(push, content=body)
        assert refused.status_code == 403 and "CSRF" in refused.text
        pushed = client.post(push, content=body, headers={"X-CSRF-Token": csrf})
        assert pushed.status_code == 200 and "Model iris-ui v1 pushed" in pushed.text
    with up.api() as api:
        assert api.get("/api/v1/projects/default/models/iris-ui").json()["versions"]
    head = (
        f"POST {push} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: pier_session={up.token}\r\n"
        f"X-CSRF-Token: {csrf}\r\nContent-Length: {5 * 2**30}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", up.port), timeout=30) as raw:
        raw.sendall(head.encode())
        answer = read_answer(raw)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "models.max_upload_bytes" in answer
