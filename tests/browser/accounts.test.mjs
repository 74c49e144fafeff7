// Browser acceptance test of the account pages: sign up, verify the email address with the
// link delivered to the real SMTP server (aiosmtpd, started by scripts/test-services), turn
// caption history on, caption an image and a batch, find them in the history, export the data
// (ZIP), and delete the account. Playwright (playwright-core) driving Debian's Chromium, headless.
//
// Run by scripts/browser-test, which starts the server with TAKARIR_SMTP_URL and sets, besides
// the variables page.test.mjs reads:
//   TAKARIR_MAILDIR    the folder the SMTP server writes each delivered message to

import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = process.env.TAKARIR_URL;
const ARTIFACTS = process.env.TAKARIR_ARTIFACTS || path.join(here, "../../test-artifacts/browser");
const SAMPLES = process.env.TAKARIR_SAMPLES || path.join(here, "../../samples");
const MAILDIR = process.env.TAKARIR_MAILDIR;
const TAG = process.env.TAKARIR_TAG || "fixture";
const CAPTIONS_FILE = process.env.TAKARIR_CAPTIONS || "";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 60_000;

const opened = [];
after(async () => {
  for (const { context, dir } of opened) {
    await context.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The verification link in the newest message to `to` (quoted-printable decoded), waiting. */
async function verificationLink(to) {
  for (let i = 0; i < 200; i++) {
    const files = fs.readdirSync(MAILDIR).filter((f) => f.endsWith(".eml")).sort().reverse();
    for (const f of files) {
      let text = fs.readFileSync(path.join(MAILDIR, f), "utf8");
      if (!text.split("\n")[0].includes(to)) continue;
      if (/Content-Transfer-Encoding: quoted-printable/i.test(text)) {
        text = text.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      }
      const m = text.match(/https?:\/\/[^\s]+\/account\/verify\?token=[A-Za-z0-9_-]+/);
      if (m) return m[0];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no verification email to ${to}`);
}

test("account: sign up, verify by email, history on, caption, export, delete", async () => {
  assert.ok(BASE, "TAKARIR_URL is set");
  assert.ok(MAILDIR, "TAKARIR_MAILDIR is set (scripts/test-services starts the SMTP server)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "takarir-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    locale: "id-ID",
    viewport: { width: 1100, height: 900 },
    timeout: TIMEOUT,
  });
  opened.push({ context, dir });
  context.setDefaultTimeout(TIMEOUT);
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `${TAG}-account-${name}.png`), fullPage: true });

  // Sign up (Indonesian page by default).
  const email = `peramban.${process.pid}.${Date.now()}@contoh.id`;
  const password = "jerapah-berlari-cepat-9";
  await page.goto(`${BASE}/account/signup`);
  assert.equal(await page.getAttribute("html", "lang"), "id");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(/\/account$/), page.click('#signup-form button[type="submit"]')]);
  assert.equal((await page.textContent("#profile-email")).trim(), email);
  assert.match(await page.textContent("#email-status"), /belum diverifikasi/);
  await shot("signed-up");

  // Verify the address with the emailed link.
  const link = await verificationLink(email);
  await page.goto(link);
  assert.match(await page.textContent("#message"), /terverifikasi/);
  await page.goto(`${BASE}/account`);
  assert.equal((await page.textContent("#email-status")).trim(), "terverifikasi");

  // History is off by default; turn it on.
  assert.equal(await page.isChecked("#history_enabled"), false);
  assert.equal(await page.isChecked("#training_consent"), false);
  await page.check("#history_enabled");
  await Promise.all([page.waitForURL(/msg=saved/), page.click("#save-prefs")]);
  assert.equal(await page.isChecked("#history_enabled"), true);

  // Caption an image (with JavaScript: the upload carries the session's CSRF token).
  await page.goto(`${BASE}/`);
  await page.setInputFiles("#image", [path.join(SAMPLES, "coffee.jpg")]);
  await page.click('#caption-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector("#result-list li.caption"));
  const caption = (await page.locator("#result-list li.caption").first().evaluate((e) => (e.firstChild ? e.firstChild.textContent : ""))).trim();
  assert.ok(caption.length > 0);
  if (CAPTIONS_FILE) fs.appendFileSync(CAPTIONS_FILE, caption + "\n");

  // It is in the history, as text only.
  await page.goto(`${BASE}/account`);
  const entries = page.locator("#history-list > li");
  assert.equal(await entries.count(), 1);
  assert.equal((await entries.first().locator(".caption").textContent()).trim(), caption);
  await shot("history");

  // A batch sent from the page is the account's too: its captions join the history.
  await page.goto(`${BASE}/`);
  await page.setInputFiles("#batch-files", ["rocket.jpg", "astronaut.jpg"].map((f) => path.join(SAMPLES, f)));
  await page.click('#batch-form button[type="submit"]');
  await page.waitForSelector("#batch-links:not([hidden])");
  await page.goto(`${BASE}/account`);
  const after = await page.locator("#history-list > li").count();
  assert.ok(after >= 3, `the batch's captions in the history (${after} entries)`);
  // The account page lists the job with its downloads.
  assert.equal(await page.locator("#jobs li").count(), 1);
  const csv = await page.request.get(`${BASE}${await page.getAttribute("#jobs li a", "href")}`);
  assert.equal(csv.status(), 200);

  // Export: a ZIP behind a link shown once.
  await Promise.all([page.waitForSelector("#export-link"), page.click("#create-export")]);
  const href = await page.getAttribute("#export-link", "href");
  // A small export is made within the request: listed ready, in Indonesian.
  assert.equal(await page.getAttribute("#exports .export-status", "data-status"), "ready");
  assert.equal((await page.textContent("#exports .export-status")).trim(), "siap");
  const res = await page.request.get(`${BASE}${href}`);
  assert.equal(res.status(), 200);
  assert.equal(res.headers()["content-type"], "application/zip");
  const zip = await res.body();
  assert.equal(zip.subarray(0, 2).toString(), "PK");
  assert.ok(zip.includes(Buffer.from("data.json")), "data.json in the ZIP");
  assert.ok(zip.includes(Buffer.from(caption)), "the history caption in the export");
  await shot("export");

  // Delete the account: password asked again; afterwards the export link is dead and the
  // account page offers sign-in.
  await page.fill("#delete-password", password);
  await Promise.all([page.waitForLoadState("domcontentloaded"), page.click("#delete-account")]);
  assert.match(await page.textContent("#message"), /telah dihapus/);
  const gone = await page.request.get(`${BASE}${href}`);
  assert.equal(gone.status(), 410);
  await page.goto(`${BASE}/account`);
  assert.equal(await page.locator("#login-form").count(), 1);
  await shot("deleted");
  assert.deepEqual(problems, []);
});
