"""The committed dashboard build (api/static) is the build of web/'s sources, small, pinned and
offline; checked without node (web/build.mjs stamps the sources' digest into the bundle)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

from api.routes.dashboard import STATIC_DIR

WEB = Path(__file__).resolve().parents[2] / "web"
DIGEST = re.compile(r"sources-sha256: ([0-9a-f]{64})")


def _sources_digest() -> str:
    names = sorted(
        ["build.mjs", "index.html", "package-lock.json"]
        + [f"src/{p.name}" for p in (WEB / "src").iterdir()]
    )
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}\0".encode())
        digest.update((WEB / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def test_the_committed_bundle_is_built_from_the_sources() -> None:
    expected = _sources_digest()
    for asset in ("app.js", "app.css"):
        head = (STATIC_DIR / asset).read_text(encoding="utf-8")[:400]
        found = DIGEST.search(head)
        assert found is not None, f"{asset} has no sources digest: rebuild (npm run build in web/)"
        assert found.group(1) == expected, f"{asset} is stale: run npm run build in web/"
    assert (STATIC_DIR / "index.html").read_bytes() == (WEB / "index.html").read_bytes()


def test_the_page_is_small_and_loads_nothing_from_elsewhere() -> None:
    gzipped = {p.name: len(gzip.compress(p.read_bytes(), 6)) for p in STATIC_DIR.iterdir()}
    assert sum(gzipped.values()) < 200_000, gzipped
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no CDN at run time"
    assert "fetch(" not in html


def test_front_end_packages_are_pinned_exactly() -> None:
    manifest = json.loads((WEB / "package.json").read_text(encoding="utf-8"))
    pins = {**manifest["dependencies"], **manifest["devDependencies"]}
    assert set(pins) == {"uplot", "esbuild", "typescript"}
    assert all(re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", v) for v in pins.values()), pins
    lock = json.loads((WEB / "package-lock.json").read_text(encoding="utf-8"))
    for name, version in pins.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
