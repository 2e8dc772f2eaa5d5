// The console in a real browser: sign in with a token, open the lateral-movement case, change
// its status, add a note, move the map's time slider; screenshots go to OUTDIR.
// Usage: node console.mjs BASE_URL TOKEN OUTDIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, token, out] = process.argv.slice(2);
if (!base || !token || !out) {
  console.error("usage: node console.mjs BASE_URL TOKEN OUTDIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const fail = (m) => { throw new Error(m); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1300, height: 900 } })).newPage();
  page.setDefaultTimeout(15000);
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) external.push(r.url()); });

  // Sign in.
  await page.goto(base + "/ui/cases");
  if (!page.url().endsWith("/login")) fail("not sent to the login page: " + page.url());
  await page.fill("#token", token);
  await page.click("#signin");
  await page.waitForURL("**/ui/cases");
  await page.screenshot({ path: out + "/1-cases.png", fullPage: true });

  // Open the case of the lateral-movement chain.
  const link = page.locator("a.case-link", { hasText: "remote execution over SMB" });
  if ((await link.count()) !== 1) fail("expected one lateral-movement case in the queue");
  await link.click();
  await page.waitForURL(/\/ui\/cases\/\d+$/);
  for (const ip of ["10.0.2.21", "10.0.3.30", "10.0.3.40", "10.0.3.50"]) {
    if ((await page.locator("#observables td.data", { hasText: ip }).count()) < 1) fail("observable " + ip + " missing");
  }

  // Change its status.
  await page.selectOption("#status", "InProgress");
  await page.click("#set-status");
  await page.waitForFunction(() => document.querySelector("#case-status")?.textContent === "InProgress");

  // Add a note.
  const note = "Jump host 10.0.2.21 reached the backup server in three hops; isolating.";
  await page.fill("#note", note);
  await page.click("#add-note");
  await page.locator(".note", { hasText: note }).waitFor();
  if ((await page.locator("#timeline li", { hasText: "status New -> InProgress" }).count()) !== 1) fail("status change not on the timeline");
  await page.screenshot({ path: out + "/2-case.png", fullPage: true });

  // The map: at the end of the capture the attack's edges are drawn, alerted.
  await page.goto(base + "/ui/map");
  await page.waitForSelector("#map[data-loaded]");
  const edges = async () => page.$$eval("#map line.edge", (l) => l.map((e) => e.getAttribute("class") + " " + e.dataset.src + ">" + e.dataset.dest));
  const late = await edges();
  if (!late.some((e) => e.includes("alerted") && e.includes("10.0.2.21>10.0.3.30"))) fail("the attack edge is not on the map: " + late);
  await page.screenshot({ path: out + "/3-map-end.png", fullPage: true });

  // Move the slider back to the start: only the baseline administration is left.
  const before = await page.getAttribute("#map", "data-loaded");
  await page.focus("#slider");
  await page.keyboard.press("Home");
  await page.waitForFunction((b) => document.querySelector("#map")?.getAttribute("data-loaded") !== b, before);
  const early = await edges();
  if (early.some((e) => e.includes("alerted"))) fail("alerted edges at the start: " + early);
  if (early.length === 0) fail("no edges at the start of the capture");
  await page.screenshot({ path: out + "/4-map-start.png", fullPage: true });

  // Click an edge: its flows are listed.
  await page.locator("#map line.edge").first().click({ force: true });
  await page.waitForFunction(() => /\d+ flows/.test(document.querySelector("#flow-list")?.textContent || ""));
  await page.screenshot({ path: out + "/5-map-flows.png", fullPage: true });

  if (external.length) fail("requests left the console: " + external.join(", "));
  console.log("browser test passed: " + JSON.stringify({ late: late.length, early: early.length }));
} finally {
  await browser.close();
}
