// A headless Chromium driven one command at a time, for the console tests
// (pipelines/tests/it/console.rs). Each line on stdin is a JSON command; each answer is one JSON
// line on stdout: {"ok": true, ...} or {"ok": false, "error": "..."}. The Rust test holds the
// assertions; this only acts and reports what the page shows.
//
// Commands: goto {url} · fill {selector, value} · click {selector} · select {selector, value}
// · wait {selector, text?, timeout?} · gone {selector, timeout?} · texts {selector}
// · count {selector} · screenshot {path, width?, height?, fullPage?} · close

import { chromium } from "playwright-core";
import readline from "node:readline";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
const browser = await chromium.launch({ executablePath, args, headless: true });
const page = await browser.newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// A refused request (401, 403) is an answer the page shows; anything else logged as an error
// is a problem.
page.on("console", (m) => {
  if (m.type() !== "error") return;
  if (/status of (401|403) /.test(m.text())) return;
  problems.push(`console: ${m.text()}`);
});

const DEFAULT_TIMEOUT = 15000;

async function run(cmd) {
  const timeout = cmd.timeout || DEFAULT_TIMEOUT;
  switch (cmd.op) {
    case "goto":
      await page.goto(cmd.url);
      return {};
    case "fill":
      await page.fill(cmd.selector, cmd.value, { timeout });
      return {};
    case "click":
      await page.click(cmd.selector, { timeout });
      return {};
    case "select":
      await page.selectOption(cmd.selector, cmd.value, { timeout });
      return {};
    case "wait":
      if (cmd.text) {
        await page.locator(cmd.selector, { hasText: cmd.text }).first().waitFor({ timeout });
      } else {
        await page.locator(cmd.selector).first().waitFor({ timeout });
      }
      return {};
    case "gone":
      await page.locator(cmd.selector).first().waitFor({ state: "detached", timeout });
      return {};
    case "texts":
      return { texts: await page.locator(cmd.selector).allTextContents() };
    case "count":
      return { count: await page.locator(cmd.selector).count() };
    case "screenshot":
      await page.setViewportSize({ width: cmd.width || 1280, height: cmd.height || 800 });
      await page.screenshot({ path: cmd.path, fullPage: !!cmd.fullPage });
      return {};
    case "close":
      await browser.close();
      return { problems };
    default:
      throw new Error(`unknown command ${cmd.op}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
    const result = await run(cmd);
    process.stdout.write(JSON.stringify({ ok: true, ...result }) + "\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e), problems }) + "\n");
  }
  if (cmd && cmd.op === "close") break;
}
await browser.close().catch(() => {});
process.exit(0);
