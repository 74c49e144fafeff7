"""Copies the licence files of every crate compiled into the `takarir` binary.

Reads `cargo metadata --format-version 1` on standard input; writes DEST/NAME-VERSION/<licence
files> and DEST/crates.tsv (name, version, SPDX licence, repository, files). Follows normal
dependencies only (what is linked into the binary, proc-macros included), not dev or build-only
ones. Used by scripts/release; standard library only.
"""

import json
import re
import shutil
import sys
from pathlib import Path

LICENCE_FILE = re.compile(r"^(licen[cs]e|copying|notice|copyright|unlicense)", re.IGNORECASE)


def main() -> int:
    dest = Path(sys.argv[1])
    meta = json.load(sys.stdin)
    packages = {p["id"]: p for p in meta["packages"]}
    members = set(meta["workspace_members"])
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(i for i in members if packages[i]["name"] == "takarir")

    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                todo.append(dep["pkg"])

    dest.mkdir(parents=True, exist_ok=True)
    rows, missing = [], []
    for pid in sorted(seen - members, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        p = packages[pid]
        src = Path(p["manifest_path"]).parent
        files = sorted(f for f in src.iterdir() if f.is_file() and LICENCE_FILE.match(f.name))
        label = f"{p['name']}-{p['version']}"
        if files:
            (dest / label).mkdir(exist_ok=True)
            for f in files:
                shutil.copyfile(f, dest / label / f.name)
        else:
            missing.append(label)
        rows.append(
            "\t".join(
                [
                    p["name"],
                    p["version"],
                    p.get("license") or "(see repository)",
                    p.get("repository") or "",
                    ",".join(f.name for f in files) or "(no licence file in the crate)",
                ]
            )
        )
    (dest / "crates.tsv").write_text(
        "name\tversion\tlicense\trepository\tfiles\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    print(
        f"crate_licenses: {len(rows)} crates, {len(rows) - len(missing)} with licence files"
        + (f"; without: {', '.join(missing)}" if missing else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
