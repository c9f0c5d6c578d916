"""training.valsets: a val folder rebuilt from a manifest of photos in local git repositories."""
import hashlib
import os
import subprocess

import pytest

from training.valsets import main, read_manifest, restore

HEADER = "file\trepo\tcommit\tpath\tsha256\tlicence\n"


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def mirror(tmp_path):
    """A one-commit repository at MIRRORS/owner+photos with two files, and its commit."""
    work = tmp_path / "mirrors" / "owner+photos"
    (work / "dir").mkdir(parents=True)
    (work / "dir" / "a.jpg").write_bytes(b"\xff\xd8 photo a")
    (work / "b.png").write_bytes(b"\x89PNG photo b")
    git("init", "-q", cwd=work)
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "photos", cwd=work)
    return tmp_path / "mirrors", git("rev-parse", "HEAD", cwd=work)


def manifest(tmp_path, rows):
    p = tmp_path / "m.tsv"
    p.write_text(HEADER + "".join("\t".join(r) + "\n" for r in rows))
    return str(p)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def test_restores_byte_for_byte_and_skips_what_is_there(tmp_path, mirror):
    mirrors, commit = mirror
    m = manifest(tmp_path, [
        ("x/1.jpg", "owner/photos", commit, "dir/a.jpg", sha(b"\xff\xd8 photo a"), "cc0"),
        ("y/2.png", "owner/photos", commit, "b.png", sha(b"\x89PNG photo b"), "cc0"),
    ])
    out = tmp_path / "out"
    assert restore(read_manifest(m), str(out), str(mirrors)) == {"written": 2, "already_there": 0, "total": 2}
    assert (out / "x" / "1.jpg").read_bytes() == b"\xff\xd8 photo a"
    assert (out / "y" / "2.png").read_bytes() == b"\x89PNG photo b"
    assert main(["--manifest", m, "--out", str(out), "--mirrors", str(mirrors)]) == 0
    assert restore(read_manifest(m), str(out), str(mirrors))["already_there"] == 2


def test_a_wrong_hash_is_not_written_and_fails(tmp_path, mirror, capsys):
    mirrors, commit = mirror
    m = manifest(tmp_path, [
        ("ok.jpg", "owner/photos", commit, "dir/a.jpg", sha(b"\xff\xd8 photo a"), "cc0"),
        ("bad.png", "owner/photos", commit, "b.png", "0" * 64, "cc0"),
        ("gone.png", "owner/photos", commit, "missing.png", "1" * 64, "cc0"),
        ("nomirror.png", "other/repo", commit, "b.png", "2" * 64, "cc0"),
    ])
    out = tmp_path / "out"
    assert main(["--manifest", m, "--out", str(out), "--mirrors", str(mirrors)]) == 1
    err = capsys.readouterr().err
    assert "3 of 4 photos not restored" in err
    assert "bad.png: sha256" in err and "gone.png: " in err and "missing.png is not in owner/photos" in err and "no local git directory for other/repo" in err
    assert (out / "ok.jpg").exists() and not (out / "bad.png").exists()
    assert not [f for f in os.listdir(out) if f.endswith(".part")]


def test_repo_option_and_manifest_errors(tmp_path, mirror):
    mirrors, commit = mirror
    m = manifest(tmp_path, [("a.jpg", "owner/photos", commit, "dir/a.jpg", sha(b"\xff\xd8 photo a"), "cc0")])
    out = tmp_path / "o"
    assert main(["--manifest", m, "--out", str(out), "--repo", f"owner/photos={mirrors / 'owner+photos'}"]) == 0
    assert (out / "a.jpg").exists()
    bad = tmp_path / "bad.tsv"
    bad.write_text("file\trepo\n")
    with pytest.raises(ValueError, match="no rows"):
        read_manifest(str(bad))
    bad.write_text("file\trepo\nx\ty\n")
    with pytest.raises(ValueError, match="missing column"):
        read_manifest(str(bad))
    escape = manifest(tmp_path, [("../x.jpg", "owner/photos", commit, "b.png", "0" * 64, "cc0")])
    with pytest.raises(ValueError, match="relative path inside"):
        read_manifest(escape)
    with pytest.raises(SystemExit):
        main(["--manifest", m, "--out", str(out), "--repo", "owner/photos"])
    assert main(["--manifest", m, "--out", str(tmp_path / "o2"), "--repo", f"owner/photos={tmp_path}"]) == 1


def test_the_shipped_manifests_are_well_formed():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ("fullval_imagenette.tsv", "fullval_faces.tsv"):
        rows = read_manifest(os.path.join(here, "data", name))
        assert len(rows) == 150
        assert len({r["file"] for r in rows}) == 150
        assert all(len(r["sha256"]) == 64 and len(r["commit"]) == 40 for r in rows)
