"""Rebuild a validation folder from a manifest of photos in public git repositories.

A manifest is a TSV with the columns `file` (where the photo goes, relative to --out, e.g.
`imagenette/02552805a21000ba.jpg`), `repo` (owner/name), `commit`, `path` (inside the repository
at that commit), `sha256` and `licence`; `training/data/fullval_imagenette.tsv` and
`fullval_faces.tsv` are two (the larger originals of general/val's imagenette and face photos,
the "fullval" set of `models/README.md`). Every photo is read as COMMIT:PATH from a local clone of
its repository (one `git cat-file --batch` per repository), checked against its sha256 and written
byte for byte; nothing is downloaded. A photo whose bytes do not match is not written and the run
fails.

  python -m training.valsets --manifest training/data/fullval_imagenette.tsv \\
      --manifest training/data/fullval_faces.tsv --mirrors MIRRORS --out FULLVAL

MIRRORS holds one git directory per repository in any layout `training.broad` accepts
(`OWNER+NAME/repo`, `OWNER+NAME`, `OWNER/NAME`, each bare or a clone), or give each with
`--repo OWNER/NAME=GITDIR`.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys

from training.broad import BlobReader, find_git_dir, git_dir_ok

COLUMNS = ("file", "repo", "commit", "path", "sha256")


def read_manifest(path: str) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = [c for c in COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    for i, r in enumerate(rows, start=2):
        f = r["file"]
        if not f or os.path.isabs(f) or ".." in f.split("/"):
            raise ValueError(f"{path}, line {i}: file {f!r} must be a relative path inside --out")
    return rows


def git_dir_for(repo: str, mirrors: str | None, given: dict[str, str]) -> str:
    """The git dir of `repo`: --repo's folder (a clone or a bare repository), else found under
    --mirrors in any layout `training.broad` accepts."""
    if repo in given:
        path = given[repo]
        for cand in (path, os.path.join(path, ".git")):
            if git_dir_ok(cand):
                return cand
        raise FileNotFoundError(f"{path} (given for {repo}) is not a git repository")
    found = find_git_dir(mirrors, repo) if mirrors else None
    if found is None:
        raise FileNotFoundError(f"no local git directory for {repo} (give --mirrors or --repo {repo}=GITDIR)")
    return found


def restore(rows: list[dict], out: str, mirrors: str | None = None, given: dict[str, str] | None = None) -> dict:
    """Write every row's photo under out; returns counts. Raises RuntimeError listing the failures."""
    given = given or {}
    git_dirs: dict[str, str | FileNotFoundError] = {}
    for repo in {r["repo"] for r in rows}:
        try:
            git_dirs[repo] = git_dir_for(repo, mirrors, given)
        except FileNotFoundError as e:
            git_dirs[repo] = e
    written = kept = 0
    failures: list[str] = []
    readers: dict[str, BlobReader] = {}
    try:
        for r in rows:
            dest = os.path.join(out, r["file"])
            if os.path.exists(dest):
                with open(dest, "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() == r["sha256"]:
                        kept += 1
                        continue
            gitdir = git_dirs[r["repo"]]
            if isinstance(gitdir, FileNotFoundError):
                failures.append(f"{r['file']}: {gitdir}")
                continue
            reader = readers.get(gitdir) or readers.setdefault(gitdir, BlobReader(gitdir))
            data = reader.read(f"{r['commit']}:{r['path']}")
            if data is None:
                failures.append(f"{r['file']}: {r['commit'][:12]}:{r['path']} is not in {r['repo']}")
                continue
            got = hashlib.sha256(data).hexdigest()
            if got != r["sha256"]:
                failures.append(f"{r['file']}: sha256 {got[:16]} does not match the manifest's {r['sha256'][:16]}")
                continue
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            tmp = dest + ".part"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, dest)
            written += 1
    finally:
        for reader in readers.values():
            reader.close()
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(rows)} photos not restored:\n  " + "\n  ".join(failures[:20]))
    return {"written": written, "already_there": kept, "total": len(rows)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", action="append", required=True, help="TSV (repeatable)")
    ap.add_argument("--out", required=True, help="folder to write the photos into")
    ap.add_argument("--mirrors", help="folder of git directories named OWNER+NAME[/repo]")
    ap.add_argument("--repo", action="append", default=[], metavar="OWNER/NAME=GITDIR")
    args = ap.parse_args(argv)
    given = {}
    for spec in args.repo:
        name, sep, gitdir = spec.partition("=")
        if not sep or not name or not gitdir:
            ap.error(f"--repo wants OWNER/NAME=GITDIR, got {spec!r}")
        given[name] = gitdir
    try:
        rows = [r for m in args.manifest for r in read_manifest(m)]
        counts = restore(rows, args.out, args.mirrors, given)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
