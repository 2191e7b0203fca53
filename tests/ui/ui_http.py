"""HTTP helpers of the UI tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def fetch(url: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request, errors included."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_json(url: str):
    code, _, body = fetch(url)
    assert code == 200, (url, code, body)
    return json.loads(body)
