"""A served demo (tiny model, temporary home) and a headless Debian Chromium driven by Playwright.

The browser is the system's /usr/bin/chromium (scripts/setup.sh installs it); Playwright never
downloads one. Screenshots go to test-artifacts/ (gitignored), for people to look at.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("PROMPTEMBEDDER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
REPO = Path(__file__).resolve().parents[2]
DEMO_MODULES = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`promptembedder demo --model tiny` in a subprocess; yields (url, home, outside-root folder, root folder)."""
    base = tmp_path_factory.mktemp("ui")
    home, root, outside = base / "home", base / "root", base / "outside"
    for folder in (root, outside):
        folder.mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "garden.md").write_text("# Garden\n\nTomatoes need six hours of sun and deep watering.\n")
    (outside / "secret.txt").write_text("not for the browser\n")
    env = {**os.environ, "PROMPTEMBEDDER_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    port = free_port()
    log = open(base / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--model", "tiny", "--modules", str(DEMO_MODULES),
         "--port", str(port), "--root", str(root)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    url = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and url is None:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if re.match(r"https?://", line.strip()):
            url = line.strip()
    if url is None:
        process.kill()
        log.close()
        pytest.fail(f"the server did not start: {(base / 'server.log').read_text()[-3000:]}")
    # pages fill their collection lists when they load: load none before the demo collection exists
    while "searchable" not in (base / "server.log").read_text():
        if time.monotonic() > deadline + 120 or process.poll() is not None:
            process.kill()
            log.close()
            pytest.fail(f"the demo collection never became searchable: {(base / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield {"url": url, "home": home, "root": root, "outside": outside, "log": base / "server.log"}
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/setup.sh as root (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when == "call":
        item.failed_call = outcome.get_result().failed


@pytest.fixture
def page(browser, server, request):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)  # the first page load on a busy 2-core machine can take a while
    page.goto(server["url"])
    page.locator("#search-query textarea").wait_for()
    # the page's load event fills the collection lists; acting before that would race it
    page.wait_for_function("(document.querySelector('#search-collection input') || {}).value")
    yield page
    if getattr(request.node, "failed_call", False):  # what the user saw when it failed
        shot(page, f"failed-{request.node.name}")
    context.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fill(page, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(text)


def choose(page, elem_id: str, value: str) -> None:
    """Pick a value in a Gradio dropdown."""
    box = page.locator(f"#{elem_id} input[role=combobox]")
    box.click()
    box.fill(value)
    page.locator(f"ul[role=listbox] li[role=option][aria-label='{value}']").first.click()


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
