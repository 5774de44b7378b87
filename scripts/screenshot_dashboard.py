"""Refresh docs/dashboard-overview.png: the dashboard's overview of the demo, as the README shows it.

    .venv/bin/python scripts/screenshot_dashboard.py [--warehouse URL] [--out FILE]

Runs `okr demo` into a scratch folder (or takes the warehouse at --warehouse), starts
`okr serve` on it, and screenshots the overview in the system's Chromium (Debian's
`chromium`, or $OKR_CHROMIUM; .ci/chromium.sh installs it) through Playwright: 1200 px
wide, the top of the page, a PNG of at most 300 KB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OKR = Path(sys.executable).parent / "okr"
WIDTH, HEIGHT = 1200, 900
MAX_BYTES = 300_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def okr_env(**settings: str) -> dict[str, str]:
    """This environment without OKR_* and DAGSTER_* settings (the demo picks its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKR_", "DAGSTER_"))}
    return {**env, **settings}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"okr serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"okr serve did not answer {url} in {seconds:.0f} s")


def chromium() -> str:
    path = os.environ.get("OKR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        raise SystemExit(f"no Chromium at {path}: run .ci/chromium.sh as root, or set OKR_CHROMIUM")
    return path


def screenshot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(url)
            page.wait_for_load_state("load")
            page.screenshot(path=str(out), full_page=False)
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", help="a warehouse URL to show (default: run okr demo)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard-overview.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="okr-screenshot-") as scratch:
        folder = Path(scratch)
        url = args.warehouse or f"sqlite:///{folder / 'warehouse.db'}"
        if not args.warehouse:
            print("running okr demo ...", file=sys.stderr)
            demo = subprocess.run(
                [str(OKR), "demo"],
                cwd=folder,
                env=okr_env(
                    OKR_WAREHOUSE_URL=url,
                    OKR_DEFS=str(REPO / "okr_defs"),
                    DAGSTER_HOME=str(folder / "dagster"),
                ),
                capture_output=True,
                text=True,
            )
            if demo.returncode != 0:
                print(demo.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"okr demo exited with {demo.returncode}")
        port = free_port()
        server = subprocess.Popen(
            [str(OKR), "serve", "--port", str(port)],
            cwd=folder,
            env=okr_env(OKR_WAREHOUSE_URL=url, OKR_DEFS=str(REPO / "okr_defs")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/healthz", server)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            screenshot(f"{base}/", args.out)
        finally:
            server.terminate()
            server.wait(timeout=10)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({WIDTH}x{HEIGHT}, {size / 1000:.0f} KB)")
    if size > MAX_BYTES:
        print(f"{args.out} is over {MAX_BYTES / 1000:.0f} KB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
