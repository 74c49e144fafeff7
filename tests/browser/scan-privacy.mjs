// Privacy check after a run of the real server (used by scripts/browser-test):
//   node scan-privacy.mjs --dir DATA_DIR [--dir TMP_DIR] [--empty TMP_DIR]
//        [--log SERVER_LOG] [--captions CAPTIONS_FILE] UPLOADED_FILE...
// Fails when a file under a --dir holds image magic numbers (FF D8 FF, 89 50 4E 47) or any
// 64-byte window of an uploaded file, when an --empty folder holds anything, or when the
// server log holds image bytes, a caption that was shown, or a client address (127.0.0.1;
// the server's own "listening" line is the one place its bound address may appear).
import fs from "node:fs";
import path from "node:path";

const dirs = [];
const empty = [];
let log = null;
let captionsFile = null;
const uploads = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--dir") dirs.push(argv[++i]);
  else if (a === "--empty") empty.push(argv[++i]);
  else if (a === "--log") log = argv[++i];
  else if (a === "--captions") captionsFile = argv[++i];
  else uploads.push(a);
}

const needles = [
  ["JPEG magic", Buffer.from([0xff, 0xd8, 0xff])],
  ["PNG magic", Buffer.from([0x89, 0x50, 0x4e, 0x47])],
];
for (const f of uploads) {
  const b = fs.readFileSync(f);
  // A window every 512 bytes (any copy of 576 bytes or more holds one), and the end.
  const offsets = [];
  for (let i = 0; i + 64 <= b.length; i += 512) offsets.push(i);
  offsets.push(Math.max(0, b.length - 64));
  for (const at of offsets) {
    needles.push([`64 bytes of ${path.basename(f)} at ${at}`, b.subarray(at, at + 64)]);
  }
}

const failures = [];
function scanBytes(label, data) {
  for (const [what, n] of needles) {
    if (data.indexOf(n) !== -1) failures.push(`${label} holds ${what}`);
  }
}

function walk(dir, visit) {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, visit);
    else visit(p, e);
  }
}

let files = 0;
for (const d of dirs) {
  walk(d, (p, e) => {
    files++;
    if (e.isFile()) scanBytes(p, fs.readFileSync(p));
  });
}
// ONNX Runtime (1.32, its bundled 1DS telemetry client) writes $TMPDIR/.ses when its
// environment is created: a timestamp and a random session UUID, nothing from any request.
// That one file, in that form, is tolerated; anything else makes the folder "not empty".
const ORT_SESSION_FILE = /^\d{10,16}\n[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n?$/;
for (const d of empty) {
  if (!fs.existsSync(d)) continue;
  const left = fs.readdirSync(d).filter((n) => {
    const p = path.join(d, n);
    if (n === ".ses" && fs.statSync(p).isFile() && ORT_SESSION_FILE.test(fs.readFileSync(p, "utf8"))) {
      console.log(`privacy: note: ${p} is ONNX Runtime's session-id file (timestamp + UUID), tolerated`);
      return false;
    }
    return true;
  });
  if (left.length > 0) failures.push(`${d} is not empty: ${left.join(", ")}`);
}
if (log) {
  const raw = fs.readFileSync(log);
  scanBytes(log, raw);
  const text = raw.toString("utf8").replace(/\x1b\[[0-9;]*m/g, "");
  const lines = text.split("\n");
  lines.forEach((l, i) => {
    if (l.includes("127.0.0.1") && !/listening/.test(l)) failures.push(`${log}:${i + 1} holds a client address: ${l}`);
  });
  if (captionsFile && fs.existsSync(captionsFile)) {
    const caps = [...new Set(fs.readFileSync(captionsFile, "utf8").split("\n").map((s) => s.trim()).filter((s) => s.length >= 6))];
    for (const c of caps) {
      if (text.includes(c)) failures.push(`${log} holds a caption: ${JSON.stringify(c)}`);
    }
    console.log(`privacy: ${caps.length} distinct captions looked for in the log`);
  }
}

console.log(`privacy: scanned ${files} file(s) under ${dirs.join(", ") || "-"} and ${log || "no log"} for ${needles.length} byte patterns`);
if (failures.length) {
  for (const f of failures) console.error(`privacy: FAIL ${f}`);
  process.exit(1);
}
console.log("privacy: ok, no image bytes, captions or client addresses");
