"""A stand-in web browser for CLI OAuth clients (mcp-remote): `BROWSER=python play_browser.py`.

Opened with the authorization URL, it follows Pete's /authorize to the consent page, signs in as
PETE_TEST_OPERATOR / PETE_TEST_PASSWORD, approves every scope offered, and delivers the redirect
to the client's loopback callback, as a person's browser would. Appends what it did to
PETE_TEST_BROWSER_LOG.
"""

from __future__ import annotations

import os
import re
import sys

import httpx


def main(url: str) -> int:
    log = open(os.environ["PETE_TEST_BROWSER_LOG"], "a")  # noqa: SIM115 (kept open for the whole run)
    with httpx.Client(timeout=30, trust_env=False) as http:
        first = http.get(url)
        page = http.get(first.headers["location"])
        fields = dict(re.findall(r"<input type=hidden name=(\w+) value='([^']*)'>", page.text))
        form = {
            **fields,
            "name": os.environ["PETE_TEST_OPERATOR"],
            "password": os.environ["PETE_TEST_PASSWORD"],
            "action": "approve",
            "scope": re.findall(r"name=scope value='([^']*)'", page.text),
        }
        answer = http.post(str(page.url.copy_with(path="/authorize/consent", query=None)), data=form)
        callback = answer.headers.get("location", "")
        log.write(f"consent {answer.status_code} -> {callback.split('?')[0]}\n")
        if callback:
            delivered = http.get(callback)
            log.write(f"callback {delivered.status_code}\n")
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[-1]))
