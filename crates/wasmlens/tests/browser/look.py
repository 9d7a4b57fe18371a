#!/usr/bin/env python3
"""Opens the wasmlens view in Debian's headless chromium through Playwright, as a person
would, and prints what each screen shows as JSON on stdout; the Rust test (tests/view.rs)
judges it. `--screenshots DIR` also saves a PNG of each screen (docs/view.png is one).

    look.py --url http://127.0.0.1:8081 [--failed-trace ID] [--screenshots DIR]
"""
import argparse
import json
import sys
import time

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without these, chromium reaches for Google's hosts at every start, which a closed
# network refuses many times over.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def wait_for(page, check, what, seconds=20):
    """Polls `check` (a JavaScript expression) until it is truthy, or fails naming `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = page.evaluate(check)
        if value:
            return value
        page.wait_for_timeout(200)
    raise SystemExit(f"look.py: gave up waiting for {what} on {page.url}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--failed-trace")
    parser.add_argument("--screenshots")
    args = parser.parse_args()
    seen = {"errors": [], "requests_elsewhere": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda err: seen["errors"].append(str(err)))
        page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
        page.on("request", lambda r: r.url.startswith(args.url) or seen["requests_elsewhere"].append(r.url))

        def shot(name):
            if args.screenshots:
                page.screenshot(path=f"{args.screenshots}/{name}.png", full_page=False)

        # Overview: plots with data.
        page.goto(args.url + "/")
        wait_for(page, "[...document.querySelectorAll('[data-test=plot]')].some(p => +p.dataset.points > 0)",
                 "a plot with data")
        seen["plots"] = page.evaluate(
            "[...document.querySelectorAll('[data-test=plot]')].map(p => ({title: p.dataset.title, points: +p.dataset.points}))")
        seen["routes"] = page.evaluate("[...document.querySelectorAll('[data-test=route] h2')].map(e => e.textContent)")
        shot("overview")

        # Traces: the list, reached by the navigation link.
        page.click("header nav a[data-nav=traces]")
        wait_for(page, "document.querySelectorAll('[data-test=trace-row]').length", "a trace row")
        seen["traces"] = page.evaluate("""[...document.querySelectorAll('[data-test=trace-row]')].map(r => ({
            text: r.innerText, failed: r.dataset.failed === 'true', href: r.querySelector('a').getAttribute('href')}))""")
        shot("traces")

        # A failed trace: its waterfall, its failure, a span's details once clicked.
        if args.failed_trace:
            page.goto(f"{args.url}/traces/{args.failed_trace}")
            wait_for(page, "document.querySelectorAll('[data-test=span-row]').length", "the waterfall")
            seen["failed_trace"] = {
                "spans": page.evaluate("""[...document.querySelectorAll('[data-test=span-row]')].map(r => ({
                    name: r.dataset.name, failed: r.dataset.failed === 'true'}))"""),
                "failure": page.evaluate("document.querySelector('[data-test=trace-failed]')?.textContent ?? null"),
                "logs": page.evaluate("[...document.querySelectorAll('[data-test=log-row]')].map(r => r.innerText)"),
            }
            page.click("[data-test=span-row][data-failed=true]")
            wait_for(page, "document.querySelector('[data-test=span-details]')", "a span's details")
            seen["failed_trace"]["details"] = page.evaluate("document.querySelector('[data-test=span-details]').innerText")
            shot("trace")

        # Logs, live.
        page.click("header nav a[data-nav=logs]")
        wait_for(page, "document.querySelectorAll('[data-test=log-row]').length", "a log row")
        seen["logs"] = page.evaluate("[...document.querySelectorAll('[data-test=log-row]')].map(r => r.innerText)")
        shot("logs")

        # Workload.
        page.click("header nav a[data-nav=workload]")
        wait_for(page, "document.querySelectorAll('[data-test=component-row]').length", "a component row")
        seen["workload"] = page.evaluate("[...document.querySelectorAll('[data-test=workload]')].map(w => w.innerText)")
        shot("workload")
        browser.close()
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
