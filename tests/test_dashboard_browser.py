"""The dashboard in a real browser: headless Chromium driven by selenium against a
forwarder's API on loopback. It logs in through the one-time link, sees the rules, sees
a connection appear, adds a forward with the form and sends bytes through it, removes
it; without the cookie it shows the login prompt and no data. Also writes the README's
screenshot (docs/dashboard.png) when WSLNET_SCREENSHOT=1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB_REQUIRED
from tests.helpers import ROOT, ServerThread, echo, echo_round_trip, forwarder, free_port

pytestmark = pytest.mark.lab
TOKEN = "dashboard-test-token"


def chromium() -> Any:
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        if LAB_REQUIRED:
            pytest.fail(
                "chromium and chromium-driver are missing (tests/system-deps.sh installs them)"
            )
        pytest.skip("no chromium here (tests/system-deps.sh installs it as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1100,900", "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def api(port: int, path: str, method: str = "GET") -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the page did not show it in time"
        time.sleep(0.1)


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def test_the_dashboard_shows_and_steers_a_running_forwarder(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    servers = ServerThread()
    try:
        target = servers.serve(echo)
        api_port = free_port()
        with forwarder(f"127.0.0.1:0=127.0.0.1:{target}", "--api", str(api_port),
                       env={"WSLNET_API_TOKEN": TOKEN}) as fwd:  # fmt: skip
            link = api(api_port, "/v1/login-link", "POST")["url"]
            browser.get(link)  # sets the session cookie, then shows the page
            page = lambda: browser.find_element(By.TAG_NAME, "body").text  # noqa: E731
            wait_for(lambda: f"127.0.0.1:{target}" in page())
            assert not browser.find_element(By.ID, "login").is_displayed()

            held = echo_round_trip(fwd.port)  # a connection appears in the table
            client = f"127.0.0.1:{held.getsockname()[1]}"
            wait_for(lambda: client in browser.find_element(By.ID, "conns").text)

            box = browser.find_element(By.ID, "rule")
            box.send_keys(f"127.0.0.1:0=127.0.0.1:{target}")
            browser.find_element(By.CSS_SELECTOR, "#add button").click()
            wait_for(lambda: len(api(api_port, "/v1/status")["rules"]) == 2)
            added = api(api_port, "/v1/status")["rules"][1]
            assert added["origin"] == "api"
            port = int(added["listen"][0].rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"through the form")
                assert s.recv(100) == b"through the form"
            wait_for(lambda: f"{added['id']}" in browser.find_element(By.ID, "rules").text)
            if os.environ.get("WSLNET_SCREENSHOT") == "1":
                time.sleep(2)  # a few graph points
                browser.save_screenshot(str(ROOT / "docs" / "dashboard.png"))

            browser.find_element(By.CSS_SELECTOR, f'button[data-rule="{added["id"]}"]').click()
            wait_for(
                lambda: (
                    [r["id"] for r in api(api_port, "/v1/status")["rules"] if not r["closing"]]
                    == [1]
                )
            )
            held.close()

            browser.delete_all_cookies()  # no cookie: the login prompt, and no data
            browser.get(f"http://127.0.0.1:{api_port}/")
            wait_for(lambda: browser.find_element(By.ID, "login").is_displayed())
            assert f"127.0.0.1:{target}" not in page()
    finally:
        servers.close()


def test_a_login_link_works_once_and_a_foreign_host_is_refused() -> None:
    api_port = free_port()
    with forwarder("--api", str(api_port), env={"WSLNET_API_TOKEN": TOKEN}):
        link = api(api_port, "/v1/login-link", "POST")["url"]
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(link, timeout=5) as resp:
            assert resp.status == 200 and b"wslnet forward" in resp.read()
        with pytest.raises(urllib.error.HTTPError) as used:
            urllib.request.urlopen(link, timeout=5)
        assert used.value.code == 403
        with opener.open(f"http://127.0.0.1:{api_port}/v1/status", timeout=5) as resp:
            assert json.loads(resp.read())["schema"] == 1  # the session cookie admits reads
        post = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/v1/forwards", data=b"0=1.2.3.4:9", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as cross:
            opener.open(post, timeout=5)  # the cookie, but no same-origin Origin header
        assert cross.value.code == 403
        rebound = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/", headers={"Host": "evil.example:80"}
        )
        with pytest.raises(urllib.error.HTTPError) as foreign:
            urllib.request.urlopen(rebound, timeout=5)
        assert foreign.value.code == 403
        # A script holding the token may name the host however it likes.
        scripted = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/v1/status",
            headers={"Host": "devbox.lan", "Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(scripted, timeout=5) as resp:
            assert resp.status == 200


def test_wslnet_dashboard_finds_the_running_forwarder_and_prints_a_working_link(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    env.pop("WSLNET_API_TOKEN", None)  # the forwarder makes its token file; the CLI reads it
    cmd = [sys.executable, "-m", "wslnet", "dashboard", "--no-browser"]
    with forwarder("--api", str(free_port()), env=env):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20, env=env)
        assert res.returncode == 0, res.stderr
        link = res.stdout.strip()
        assert link.startswith("http://127.0.0.1:") and "/login?" in link
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(link, timeout=5) as resp:
            assert resp.status == 200
        status = link.split("/login?")[0] + "/v1/status"
        with opener.open(status, timeout=5) as resp:
            assert json.loads(resp.read())["schema"] == 1
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=20, env=env)
    assert res.returncode == 1
    assert res.stderr.startswith("wslnet: no forwarder is running"), res.stderr
    assert len(res.stderr.splitlines()) == 1
