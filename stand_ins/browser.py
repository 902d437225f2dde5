"""A real browser for the report's tests: Debian's `chromium`, headless, with the network cut off. Every request the
page makes goes to a local recording proxy (which answers none), and host names resolve nowhere, so a test sees
each request that would have left the page."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from stand_ins.http import LocalHttpStub

INSTALL_HINT = "install Debian's chromium package (apt-get install chromium); .ci/run does"
QUIET = [
    "--headless",
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    "--metrics-recording-only",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-field-trial-config",
    "--no-service-autorun",
    "--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions,"
    "NetworkTimeServiceQuerying,OptimizationGuideModelDownloading,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
    "--hide-scrollbars",
]


# Chromium's own services, which it calls whatever the page (component updates, sign-in, network time) and which no
# flag turns off in Debian's build; every other request is the page's.
BROWSER_OWN_HOSTS = frozenset({"update.googleapis.com", "accounts.google.com", "clients2.google.com"})


def host_of(request: str) -> str:
    """The host a recorded request ("CONNECT host:443" or "GET http://host/path") goes to."""
    target = request.split(" ", 1)[1]
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0]


def executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class RecordingProxy(LocalHttpStub):
    """Takes every request a browser sends through it (plain or CONNECT), records it, answers 403."""

    def __init__(self) -> None:
        proxy = self
        self.requests: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _refuse(self) -> None:
                proxy.requests.append(f"{self.command} {self.path}")
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_CONNECT = do_OPTIONS = _refuse

        self.start_server(Handler)


class HeadlessChromium:
    """`with HeadlessChromium() as browser:` browser.dom(file), browser.screenshot(file, png) and
    browser.pdf(file, pdf), offline."""

    def __init__(self) -> None:
        binary = executable()
        if binary is None:
            raise RuntimeError(f"no chromium on PATH; {INSTALL_HINT}")
        self.binary = binary
        self.proxy = RecordingProxy()
        self.profile = Path(tempfile.mkdtemp(prefix="jhm-chromium-"))

    def __enter__(self) -> HeadlessChromium:
        self.proxy.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.proxy.__exit__(*exc)
        shutil.rmtree(self.profile, ignore_errors=True)

    @property
    def requests(self) -> list[str]:
        """What pages asked for: every request that reached the proxy but Chromium's own."""
        return [request for request in self.proxy.requests if host_of(request) not in BROWSER_OWN_HOSTS]

    def _run(self, *arguments: str) -> subprocess.CompletedProcess:
        command = [
            self.binary,
            *QUIET,
            f"--user-data-dir={self.profile}",
            f"--proxy-server={self.proxy.url}",
            "--proxy-bypass-list=<-loopback>",  # loopback too goes to the proxy
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            *arguments,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def dom(self, page: Path) -> str:
        """The DOM after the page loaded (--dump-dom)."""
        result = self._run("--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri())
        if result.returncode != 0 or "<html" not in result.stdout:
            raise RuntimeError(f"chromium could not load {page}: {result.stderr[-600:]}")
        return result.stdout

    def screenshot(self, page: Path, out: Path, width: int = 1200, height: int = 3000) -> Path:
        result = self._run(f"--window-size={width},{height}", f"--screenshot={out.resolve()}", page.resolve().as_uri())
        if result.returncode != 0 or not out.exists():
            raise RuntimeError(f"chromium took no screenshot of {page}: {result.stderr[-600:]}")
        return out

    def pdf(self, page: Path, out: Path) -> Path:
        """The page printed to PDF as a reader would (A4/Letter as Chromium defaults, no header or footer)."""
        result = self._run("--no-pdf-header-footer", f"--print-to-pdf={out.resolve()}", page.resolve().as_uri())
        if result.returncode != 0 or not out.exists():
            raise RuntimeError(f"chromium printed no PDF of {page}: {result.stderr[-600:]}")
        return out
