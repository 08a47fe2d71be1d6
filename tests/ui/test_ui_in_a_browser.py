"""The web UI in a real browser (Debian's chromium driven by Playwright) against one
real `pier up`: sign in, create a node and watch it become Healthy, send a test request,
see a chart's points after load and log lines arrive, change the configuration and
watch the rolling update's progress, change the instance range and see a new instance,
push a model, edit an alias's shares and see its charts, send a request to an image node
(the busybox echo image from the local registry, on the docker runtime) from its form.
Screenshots of the main pages at 1280 and 390 px wide go to the folder the first test
prints."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import UI_SCREENSHOTS, IrisModel, PierProcess
from tests.e2e.load import Load

CHROMIUM = Path("/usr/bin/chromium")
WIDTHS = {"wide": 1280, "narrow": 390}
NODE = "/projects/default/nodes/iris"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: scripts/install-system-packages.sh test installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser: Browser, up: PierProcess) -> Iterator[Page]:
    context = browser.new_context(base_url=up.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    """The screenshots of this run (the session's summary prints where they are)."""
    shutil.rmtree(UI_SCREENSHOTS, ignore_errors=True)
    UI_SCREENSHOTS.mkdir(parents=True)
    return UI_SCREENSHOTS


def screenshot(page: Page, shots: Path, name: str) -> None:
    """The page at both widths (full height), then back at 1280 px."""
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=shots / f"{name}-{label}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_wrong_token_is_refused(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    page.fill("input[name=token]", "not-a-token")
    page.click("button[type=submit]")
    expect(page.locator("#sign-in-error")).to_contain_text("not valid")


def test_sign_in_shows_the_projects(page: Page, up: PierProcess, shots: Path) -> None:
    screenshot(page, shots, "sign-in")
    page.fill("input[name=token]", up.token)
    page.click("button[type=submit]")
    expect(page.locator("a.tile", has_text="default")).to_be_visible()
    screenshot(page, shots, "projects")


def test_a_node_created_in_the_ui_becomes_healthy(page: Page, shots: Path) -> None:
    page.goto("/projects/default/nodes/new")
    page.fill("input[name=name]", "iris")
    page.select_option("select[name=model]", "iris")
    page.click("#new-node button[type=submit]")
    expect(page).to_have_url(re.compile(f"{NODE}$"))
    expect(page.locator("#node-status")).to_have_text("Healthy", timeout=60_000)
    expect(page.locator("#instances tr[data-status=Healthy]")).to_have_count(1)
    page.goto("/projects/default")
    expect(page.locator("#nodes tr[data-node=iris] .status")).to_have_text("Healthy")
    screenshot(page, shots, "project")


def test_a_test_request_shows_the_answer(page: Page, up: PierProcess, shots: Path) -> None:
    page.goto(f"{NODE}?tab=request")
    expect(page.locator("textarea[name='data:X']")).to_have_value("[1.0, 1.0, 1.0, 1.0]")
    page.click("#send-request")
    expect(page.locator("#call-status")).to_have_text("200")
    expect(page.locator("#call-body")).to_contain_text('"outputs"')
    expect(page.locator("#call-curl")).to_contain_text(f"{up.gateway_url}{NODE[9:]}/v2/models")
    expect(page.locator("#call-python")).to_contain_text("tritonclient.http")
    assert up.token not in page.content()
    screenshot(page, shots, "request")


def test_a_chart_has_points_after_load_and_log_lines_arrive(
    page: Page, up: PierProcess, shots: Path
) -> None:
    page.goto(NODE)
    requests_chart = page.locator("figure[data-chart=requests]")
    with Load(up, clients=2, path="/default/nodes/iris/v2/health/ready"):
        expect(requests_chart).to_have_attribute("data-points", re.compile(r"^[1-9]"))
    expect(requests_chart.locator("canvas")).to_have_count(1)
    for chart in ("latency", "bytes", "inferences", "model-time"):
        expect(page.locator(f"figure[data-chart={chart}]")).to_have_attribute(
            "data-points", re.compile(r"^[1-9]")
        )
    expect(page.locator("#logs .line").first).to_be_visible()
    expect(page.locator("#events li").first).to_be_visible()
    screenshot(page, shots, "node")
    page.click("button[data-range='1h']")
    expect(page.locator("button[data-range='1h']")).to_have_class(re.compile(r"\bon\b"))
    expect(requests_chart).to_have_attribute("data-points", re.compile(r"^[1-9]"))
    page.fill(".log-filter input[name=q]", "model loaded")
    expect(page.locator("#logs .line")).to_have_count(1)
    expect(page.locator("#logs .line")).to_contain_text("model loaded")


def test_a_new_configuration_shows_the_rolling_updates_progress(
    page: Page, up: PierProcess
) -> None:
    # Two instances, each needing three passes (an interval, 2 s, apart) to turn Healthy:
    # the first old one may go at once (one instance may be down), the second waits for
    # its replacement, so the update lasts seconds whatever an instance's start costs (a
    # forked one is up in milliseconds, between two of the page's refreshes).
    up.cli("node", "update", "iris", "--healthy-threshold", "3", "--min", "2", "--max", "2",
           "--wait")  # fmt: skip
    page.goto(NODE)
    generation = up.node("iris")["generation"]
    page.select_option("#settings select[name=configuration]", "c1.4")
    page.click("#settings button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("updated: configuration")
    progress = page.locator("#rolling-update")
    expect(progress).to_contain_text(f"Rolling update to generation {generation + 1}")
    expect(progress).to_contain_text("of 2 instances replaced")
    expect(progress).to_have_count(0, timeout=60_000)  # done: every instance is current
    expect(page.locator("#instances tr[data-status=Healthy]")).to_have_count(2)
    expect(page.locator("#node-summary")).to_contain_text("c1.4 · timeout")
    up.cli("node", "update", "iris", "--min", "1", "--max", "1", "--wait")  # as it was


def test_a_wider_instance_range_adds_an_instance(page: Page, up: PierProcess) -> None:
    page.goto(NODE)
    page.fill("#settings input[name=min_instances]", "2")
    page.fill("#settings input[name=max_instances]", "2")
    page.click("#settings button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("updated: max_instances, min_instances")
    expect(page.locator("#instances tr[data-instance]")).to_have_count(2)
    expect(page.locator("#instances tr[data-status=Healthy]")).to_have_count(2, timeout=60_000)
    assert up.node("iris")["spec"]["min_instances"] == 2


def test_the_models_page_shows_inputs_and_outputs(page: Page, shots: Path) -> None:
    page.goto("/projects/default/models")
    expect(page.locator("section.model h2")).to_contain_text("iris")
    expect(page.locator("section.model")).to_contain_text("FP32")
    screenshot(page, shots, "models")


def test_a_model_pushed_from_the_browser_is_listed(page: Page, iris_onnx: IrisModel) -> None:
    page.goto("/projects/default/models")
    page.fill("#push-model input[name=name]", "iris-web")
    page.select_option("#push-model select[name=format]", "onnx")
    page.set_input_files("#push-model input[name=file]", iris_onnx.path)
    page.click("#push-model button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("Model iris-web v1 pushed")
    expect(page.locator("#model-list section.model h2", has_text="iris-web")).to_be_visible()


def test_the_alias_page_shows_its_shares(page: Page, up: PierProcess, shots: Path) -> None:
    with up.api() as api:
        made = api.post(
            "/api/v1/projects/default/aliases",
            json={"name": "web", "spec": {"nodes": [{"node": "iris"}]}},
        )
    assert made.status_code == 201, made.text
    page.goto("/projects/default/aliases/web")
    expect(page.locator("#alias-status tbody tr")).to_contain_text("100%")
    expect(page.locator("#alias-status")).to_contain_text("Live on every gateway worker")
    with Load(up, clients=1, path="/default/aliases/web/v2/health/ready"):
        for chart in ("requests", "latency", "bytes"):
            expect(page.locator(f"figure[data-chart={chart}]")).to_have_attribute(
                "data-points", re.compile(r"^[1-9]")
            )
    screenshot(page, shots, "alias")
    page.fill("#shares input[name='share.iris']", "90")
    page.click("#shares button[type=submit]")
    expect(page.locator("#flash .error")).to_contain_text("nodes")
    expect(page.locator("#flash .error")).to_contain_text("sum to 90")
    page.fill("#shares input[name='share.iris']", "100")
    page.click("#shares button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("Alias web: iris=100%")


def test_suspend_resume_and_delete_with_confirmation(page: Page, up: PierProcess) -> None:
    page.goto(NODE)
    page.click("#suspend")
    expect(page.locator("#node-status")).to_have_text("Suspended")
    page.click("#resume")
    expect(page.locator("#suspend")).to_be_visible()
    page.click(".danger-zone summary")
    page.fill(".danger-zone input[name=confirm]", "iris")
    page.click(".danger-zone button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("alias")  # in use by the alias web
    with up.api() as api:
        assert api.delete("/api/v1/projects/default/aliases/web").status_code == 204
    page.click(".danger-zone button[type=submit]")
    expect(page).to_have_url(re.compile(r"/projects/default$"))
    assert up.node("iris").get("status") in ("Deleting", None)


def test_an_image_nodes_request_form_gets_its_answer(page: Page, up: PierProcess) -> None:
    """The form's method, path, headers and body reach the instance (the echo image
    answers them as JSON)."""
    from tests.docker.images import build_and_push, missing_prerequisite

    problem = missing_prerequisite()
    assert problem is None, problem
    health = {"path": "/healthz", "interval_s": 0.5}
    spec = {"image": build_and_push("echo:1"), "port": 8080, "health": health}
    with up.api() as api:
        made = api.post("/api/v1/projects/default/nodes", json={"name": "echo", "spec": spec})
        assert made.status_code == 201, made.text
        try:
            up.wait_for(lambda: up.node("echo")["status"] == "Healthy", timeout_s=60,
                        what="the echo node Healthy")  # fmt: skip
            page.goto("/projects/default/nodes/echo?tab=request")
            # busybox httpd hands a CGI script the body of a POST only
            page.select_option("#request-form select[name=method]", "POST")
            page.fill("#request-form input[name=path]", "/cgi-bin/echo/there?x=1")
            page.fill("#request-form textarea[name=headers]", "X-Pier-Test: from-the-form")
            page.fill("#request-form textarea[name=body]", "ping")
            page.click("#send-request")
            expect(page.locator("#call-status")).to_have_text("200")
            answer = page.locator("#call-body")
            for shown in ('"method": "POST"', '"path_info": "/there"', '"query": "x=1"',
                          '"x-pier-test": "from-the-form"', '"body": "ping"'):  # fmt: skip
                expect(answer).to_contain_text(shown)
            expect(page.locator("#call-curl")).to_contain_text("-X POST")
        finally:
            assert api.delete("/api/v1/projects/default/nodes/echo").status_code in (202, 204)
            gone = "/api/v1/projects/default/nodes/echo"
            up.wait_for(lambda: api.get(gone).status_code == 404, timeout_s=60,
                        what="the echo node and its container gone")  # fmt: skip
