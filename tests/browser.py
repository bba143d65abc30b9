"""Headless Chromium for the report tests: the binary (None when not installed) and one run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome")
                 if (path := shutil.which(name))), None)


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium headless with a fresh profile under `tmp_path`, no network, `args` added."""
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
