"""Runs the README's examples against a real `takarir serve` (scripts/docs-check).

Every fenced block after a `<!-- docs-check: NAME -->` marker in README.md is run as written,
with only its addresses changed (the server's `http://127.0.0.1:8080` and the receivers' port
9000 become the ports this check chose; the proxies' certificate paths and listen ports likewise):

- curl, python, javascript: the API clients caption photos, with an API key, and run a batch job;
- webhook-python, webhook-javascript: each receiver runs as its own process; a job's webhook is
  delivered to it and accepted, and forged, tampered and replayed requests are refused;
- nginx, caddy: the real proxies in front of a server with trust_forwarded_for: a caption over
  HTTPS, an upload of about 8 MB, no body spooled to nginx's temporary files, and a client's forged
  X-Forwarded-For that does not escape the rate limit.

Standard library only (the Python client example's `requests` comes from --python).
"""

import argparse
import hashlib
import hmac
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README_BASE = "http://127.0.0.1:8080"
INSECURE = ssl.create_default_context()
INSECURE.check_hostname = False
INSECURE.verify_mode = ssl.CERT_NONE


def log(msg):
    print(f"docs-check: {msg}", flush=True)


def fail(msg):
    raise SystemExit(f"docs-check: FAILED: {msg}")


def snippets():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = dict(re.findall(r"<!-- docs-check: ([\w-]+) -->\n```[\w]*\n(.*?)\n```", text, re.S))
    want = {"curl", "python", "javascript", "webhook-python", "webhook-javascript", "nginx", "caddy"}
    if set(found) != want:
        fail(f"README markers: found {sorted(found)}, want {sorted(want)}")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, headers=None, opener=None, context=None):
    """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        if opener is not None:
            r = opener.open(req, timeout=120)
        else:
            r = urllib.request.urlopen(req, timeout=120, context=context)
        with r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def multipart(fields, files):
    boundary = secrets.token_hex(16)
    out = b""
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    for name, (filename, data, ctype) in files.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def noise_png(path, side):
    """An incompressible RGB PNG of side×side pixels (about 3·side² bytes)."""
    raw = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))
    path.write_bytes(png)


class Process:
    """A child process with its output in a file; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name, argv, work, env=None, cwd=None):
        self.name = name
        self.log = work / f"{name}.log"
        self.proc = subprocess.Popen(argv, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
                                     env=env, cwd=cwd)

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        return self.log.read_text(errors="replace")

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_until(what, check, proc, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        if not proc.alive():
            fail(f"{proc.name} exited while waiting for {what}:\n{proc.output()[-3000:]}")
        time.sleep(0.2)
    fail(f"timed out waiting for {what}:\n{proc.output()[-3000:]}")


class Server(Process):
    def __init__(self, name, binary, work, **settings):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAKARIR_")}
        env.update({
            "TAKARIR_LISTEN": f"127.0.0.1:{self.port}",
            "TAKARIR_DATA_DIR": str(work / f"{name}-data"),
            "TAKARIR_MODEL": str(REPO / "models/default"),
        })
        env.update({f"TAKARIR_{k.upper()}": str(v) for k, v in settings.items()})
        super().__init__(name, [binary, "serve"], work, env=env)
        wait_until(f"{name} to answer", lambda: request("GET", self.base + "/api/v1/health")[0] == 200,
                   self)


def run_snippet(name, argv, work, env=None, timeout=300):
    t = time.time()
    r = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        fail(f"{name} example exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    log(f"{name} example ran in {time.time() - t:.1f}s")
    return r.stdout


def caption_count(text):
    return text.count('"captions"')


# ---- API clients ----------------------------------------------------------------------------------

def api_key(server):
    """Signs up on the server and makes an API key with the captions scope."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    creds = {"email": f"docs-{secrets.token_hex(4)}@example.org", "password": secrets.token_hex(12)}
    status, _, body = request("POST", server.base + "/api/v1/auth/register",
                              json.dumps(creds).encode(), {"Content-Type": "application/json"},
                              opener=opener)
    if status != 201:
        fail(f"sign-up answered {status}: {body[:300]}")
    csrf = json.loads(body)["csrf_token"]
    status, _, body = request("POST", server.base + "/api/v1/me/api-keys",
                              json.dumps({"name": "docs", "scopes": ["captions"]}).encode(),
                              {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                              opener=opener)
    if status not in (200, 201):
        fail(f"making an API key answered {status}: {body[:300]}")
    return json.loads(body)["key"], opener


def usage_total(server, opener):
    status, _, body = request("GET", server.base + "/api/v1/me/usage", opener=opener)
    if status != 200:
        fail(f"usage answered {status}: {body[:300]}")
    return sum(row["count"] for row in json.loads(body)["usage"])


def check_clients(server, snips, work, python):
    key, session = api_key(server)
    env = dict(os.environ, TAKARIR_API_KEY=key)

    before = usage_total(server, session)
    out = run_snippet("curl", ["bash", "-euo", "pipefail", "-c",
                               snips["curl"].replace(README_BASE, server.base)], work, env)
    if caption_count(out) < 5 or '"code"' in out:
        fail(f"curl example: expected five caption answers and no problem:\n{out[:3000]}")
    csv = out[out.rindex("}") + 1:].strip().splitlines()
    if len(csv) != 4 or not any("notes.txt" in line for line in csv):
        fail(f"curl example: the job's CSV should have a header and three files:\n{csv}")
    if usage_total(server, session) <= before:
        fail("curl example: the caption sent with the API key was not counted for its account")

    out = run_snippet("python", [python, "-c", snips["python"].replace(README_BASE, server.base)],
                      work, env)
    lines = out.splitlines()
    if not any(l.startswith("en ") for l in lines) or not all(
            any(l.startswith(f + " ") for l in lines) for f in ("astronaut.jpg", "rocket.jpg", "notes.txt")):
        fail(f"python example: expected English captions and one line per file of the job:\n{out}")

    (work / "client.mjs").write_text(snips["javascript"].replace(README_BASE, server.base))
    out = run_snippet("javascript", ["node", "client.mjs"], work, env)
    langs = {l.split(" ", 1)[0] for l in out.splitlines()}
    if not {"id", "en"} <= langs:
        fail(f"javascript example: expected captions in both languages:\n{out}")


# ---- webhook receivers ----------------------------------------------------------------------------

PY_PRELUDE = '''
import json as _json
def secret_for(job_id):
    return _json.load(open("secrets.json")).get(job_id)
def job_finished(job):
    with open("received.jsonl", "a") as f:
        f.write(_json.dumps(job) + "\\n")
'''

JS_PRELUDE = '''
import { readFileSync as _read, appendFileSync as _append } from "node:fs";
function secretFor(id) { return JSON.parse(_read("secrets.json", "utf8"))[id]; }
function jobFinished(job) { _append("received.jsonl", JSON.stringify(job) + "\\n"); }
'''


def sign(secret, timestamp, body):
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def check_receiver(name, server, snippet, work, photo):
    rdir = work / name
    rdir.mkdir()
    (rdir / "secrets.json").write_text("{}")
    port = free_port()
    code = snippet.replace("9000", str(port))
    if name == "webhook-python":
        (rdir / "receiver.py").write_text(PY_PRELUDE + code)
        proc = Process(name, [sys.executable, "receiver.py"], work, cwd=rdir)
    else:
        (rdir / "receiver.mjs").write_text(JS_PRELUDE + code)
        proc = Process(name, ["node", "receiver.mjs"], work, cwd=rdir)
    try:
        def listening():
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        wait_until(f"{name} to listen", listening, proc, 30)

        body, ctype = multipart({"lang": "en", "webhook_url": f"http://127.0.0.1:{port}/hook"},
                                {"image": ("photo.jpg", photo, "image/jpeg")})
        status, _, answer = request("POST", server.base + "/api/v1/jobs", body, {"Content-Type": ctype})
        if status != 202:
            fail(f"{name}: job answered {status}: {answer[:300]}")
        job = json.loads(answer)
        (rdir / "secrets.json").write_text(json.dumps({job["id"]: job["webhook_secret"]}))

        def delivered():
            _, _, b = request("GET", server.base + job["status_url"])
            return json.loads(b).get("webhook") is not None
        wait_until(f"{name}: the job's webhook", delivered, proc, 90)
        _, _, b = request("GET", server.base + job["status_url"])
        state = json.loads(b)
        received = (rdir / "received.jsonl").read_text().splitlines() if (rdir / "received.jsonl").exists() else []
        if state["webhook"] != "delivered" or not any(json.loads(l)["id"] == job["id"] for l in received):
            fail(f"{name}: webhook {state['webhook']!r}, receiver got {received}:\n{proc.output()}")

        # What the receiver must refuse, and a correctly signed request it must take.
        url = f"http://127.0.0.1:{port}/hook"
        genuine = json.dumps({"event": "job.finished", "job": state}).encode()
        now = int(time.time())
        secret = job["webhook_secret"]
        cases = [
            ("a correct signature", genuine, now, sign(secret, now, genuine), 204),
            ("a wrong secret", genuine, now, sign(secret[::-1], now, genuine), 401),
            ("a tampered body", genuine.replace(b'"done"', b'"evil"'), now, sign(secret, now, genuine), 401),
            ("a replayed old delivery", genuine, now - 3600, sign(secret, now - 3600, genuine), 401),
            ("no signature", genuine, now, "", 401),
            ("a hex-decoded key", genuine, now,
             "sha256=" + hmac.new(bytes.fromhex(secret), f"{now}.".encode() + genuine, hashlib.sha256).hexdigest(), 401),
        ]
        for what, body, ts, sig, want in cases:
            status, _, _ = request("POST", url, body, {"Content-Type": "application/json",
                                                       "X-Takarir-Timestamp": str(ts),
                                                       "X-Takarir-Signature": sig})
            if status != want:
                fail(f"{name}: {what} answered {status}, want {want}")
        log(f"{name}: the server's delivery verified and accepted; forged, tampered, replayed refused")
    finally:
        proc.stop()


# ---- reverse proxies ------------------------------------------------------------------------------

def check_proxy(kind, snippet, binary, tools, work, photo, big):
    server = Server(f"{kind}-backend", binary, work, trust_forwarded_for="true",
                    rate_limit_per_minute=3)
    pdir = work / kind
    pdir.mkdir()
    https_port, http_port = free_port(), free_port()
    upstream = f"127.0.0.1:{server.port}"
    try:
        if kind == "nginx":
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-keyout", pdir / "key.pem", "-out", pdir / "cert.pem"],
                           check=True, capture_output=True)
            site = "\n".join(l for l in snippet.splitlines() if "[::]" not in l)
            site = (site.replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
                    .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
                    .replace("/etc/letsencrypt/live/captions.example.org/fullchain.pem", str(pdir / "cert.pem"))
                    .replace("/etc/letsencrypt/live/captions.example.org/privkey.pem", str(pdir / "key.pem"))
                    .replace("127.0.0.1:8080", upstream))
            (pdir / "site.conf").write_text(site)
            temps = "\n".join(f"  {t}_temp_path {pdir / t};" for t in
                              ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            (pdir / "nginx.conf").write_text(
                f"daemon off;\nuser root root;\nworker_processes 1;\npid {pdir / 'nginx.pid'};\n"
                f"error_log {pdir / 'error.log'} warn;\nevents {{}}\nhttp {{\n  access_log off;\n"
                f"{temps}\n  include {pdir / 'site.conf'};\n}}\n")
            t = subprocess.run([tools["nginx"], "-t", "-p", str(pdir), "-c", str(pdir / "nginx.conf")],
                               capture_output=True, text=True)
            if t.returncode != 0:
                fail(f"nginx -t:\n{t.stderr}")
            proc = Process(kind, [tools["nginx"], "-p", str(pdir), "-c", str(pdir / "nginx.conf")], work)
        else:
            site = (snippet.replace("captions.example.org", "127.0.0.1")
                    .replace("127.0.0.1:8080", upstream))
            (pdir / "Caddyfile").write_text(
                "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n"
                f"\thttp_port {http_port}\n\thttps_port {https_port}\n\tdefault_sni 127.0.0.1\n"
                f"\tstorage file_system {pdir / 'storage'}\n}}\n\n" + site + "\n")
            env = dict(os.environ, HOME=str(pdir), XDG_DATA_HOME=str(pdir / "data"),
                       XDG_CONFIG_HOME=str(pdir / "config"))
            t = subprocess.run([tools["caddy"], "validate", "--adapter", "caddyfile", "--config",
                                str(pdir / "Caddyfile")], capture_output=True, text=True, env=env)
            if t.returncode != 0:
                fail(f"caddy validate:\n{t.stderr[-3000:]}")
            proc = Process(kind, [tools["caddy"], "run", "--adapter", "caddyfile", "--config",
                                  str(pdir / "Caddyfile")], work, env=env)
        base = f"https://127.0.0.1:{https_port}"
        wait_until(f"{kind} to answer", lambda: request(
            "GET", base + "/api/v1/health", context=INSECURE)[0] == 200, proc, 60)
        try:
            def caption(data, ctype, xff=None):
                body, mp = multipart({"lang": "en"}, {"image": ("photo", data, ctype)})
                headers = {"Content-Type": mp}
                if xff:
                    headers["X-Forwarded-For"] = xff
                return request("POST", base + "/api/v1/captions", body, headers, context=INSECURE)

            status, headers, body = caption(photo, "image/jpeg")
            if status != 200 or caption_count(body.decode()) != 1:
                fail(f"{kind}: caption over HTTPS answered {status}: {body[:300]}")
            if "max-age=31536000" not in (headers.get("Strict-Transport-Security") or ""):
                fail(f"{kind}: no Strict-Transport-Security header")
            status, _, body = caption(big, "image/png")
            if status != 200:
                fail(f"{kind}: the {len(big) / 1e6:.1f} MB upload answered {status}: {body[:300]}")
            if kind == "nginx":
                # nginx deletes a spooled body after the request, but logs that it wrote one.
                spooled = [l for l in (pdir / "error.log").read_text().splitlines()
                           if "buffered to a temporary file" in l]
                if spooled:
                    fail(f"nginx spooled a body to disk: {spooled}")
                status, headers, _ = request("GET", f"http://127.0.0.1:{http_port}/account",
                                             opener=urllib.request.build_opener(NoRedirect))
                if status != 301 or not headers.get("Location", "").startswith("https://"):
                    fail(f"nginx: plain HTTP answered {status} {headers.get('Location')}, not a redirect to HTTPS")
            # Two captions used; the third and a fourth claim other addresses. The server counts
            # the address the proxy saw, so the fourth is over the limit of 3 a minute.
            third = caption(photo, "image/jpeg", "203.0.113.7")[0]
            fourth = caption(photo, "image/jpeg", "203.0.113.8")[0]
            if (third, fourth) != (200, 429):
                fail(f"{kind}: forged X-Forwarded-For answered {third}, {fourth}; want 200, 429 "
                     "(the proxy must append or replace the client address)")
            log(f"{kind}: caption over HTTPS, {len(big) / 1e6:.1f} MB upload, HSTS, forged "
                "X-Forwarded-For still rate-limited" + (", no body on disk, HTTP redirected" if kind == "nginx" else ""))
        finally:
            proc.stop()
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the takarir binary")
    ap.add_argument("--python", required=True, help="a Python with requests")
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--caddy", required=True)
    args = ap.parse_args()
    t0 = time.time()
    snips = snippets()
    work = Path(tempfile.mkdtemp(prefix="takarir-docs-check."))
    try:
        shutil.copy(REPO / "samples/coffee.jpg", work / "photo.jpg")
        shutil.copy(REPO / "samples/chelsea.jpg", work / "other.jpg")
        with zipfile.ZipFile(work / "photos.zip", "w") as z:
            z.write(REPO / "samples/astronaut.jpg", "astronaut.jpg")
            z.write(REPO / "samples/rocket.jpg", "rocket.jpg")
            z.writestr("notes.txt", "not a photo")
        noise_png(work / "big.png", 1650)
        photo = (work / "photo.jpg").read_bytes()

        server = Server("server", args.bin, work, rate_limit_per_minute=0, webhook_private_networks="true")
        try:
            check_clients(server, snips, work, args.python)
            for name in ("webhook-python", "webhook-javascript"):
                check_receiver(name, server, snips[name], work, photo)
        finally:
            server.stop()
        tools = {"nginx": args.nginx, "caddy": args.caddy}
        for kind in ("nginx", "caddy"):
            check_proxy(kind, snips[kind], args.bin, tools, work, photo, (work / "big.png").read_bytes())
        log(f"passed in {time.time() - t0:.0f}s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
