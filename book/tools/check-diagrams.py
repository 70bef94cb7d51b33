#!/usr/bin/env python3
"""Check that every mermaid diagram of the built book renders (no "Syntax error in text").

Usage: mdbook build book && book/tools/check-diagrams.py

mdbook-mermaid only copies the diagrams' text into the pages; mermaid.js parses them in
the browser, so a syntax error only shows when a page is opened. This opens each page
that has diagrams in Debian's headless `chromium` (through the DevTools pipe of
perfetto-screenshot.py) and fails if a diagram did not render. Standard library only.
"""

import glob
import json
import importlib.util
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BOOK = os.path.dirname(HERE)


def main():
    spec = importlib.util.spec_from_file_location("ps", os.path.join(HERE, "perfetto-screenshot.py"))
    ps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ps)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("needs `chromium` (apt-get install chromium)")
    html = os.path.join(BOOK, "book", "html")
    if not os.path.isdir(html):
        sys.exit("build the book first: mdbook build book")
    cdp = ps.Cdp(chromium, 1300, 900)
    bad = []
    try:
        for md in sorted(glob.glob(os.path.join(BOOK, "src", "*.md"))):
            want = open(md).read().count("```mermaid")
            if want == 0:
                continue
            page = os.path.basename(md)[:-3] + ".html"
            target = cdp.call("Target.createTarget", {"url": "file://" + os.path.join(html, page)})["targetId"]
            session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            expr = ("JSON.stringify(Array.from(document.querySelectorAll('.mermaid svg'))"
                    ".map(e => e.textContent.includes('Syntax error in text')))")
            got = []
            for _ in range(20):
                time.sleep(0.5)
                r = cdp.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
                got = json.loads(r["result"]["value"])
                if len(got) >= want:
                    break
            ok = len(got) == want and not any(got)
            print(f"{'ok ' if ok else 'BAD'} {page}: {len(got)}/{want} diagrams rendered, errors: {sum(got)}")
            if not ok:
                bad.append(page)
            cdp.call("Target.closeTarget", {"targetId": target})
    finally:
        cdp.close()
    if bad:
        sys.exit(f"diagrams that do not render: {', '.join(bad)}")


if __name__ == "__main__":
    main()
