"""halibit.batch on a Dask LocalCluster of 2 worker processes: the same results as `halibit
classify` for every image, in input order, and an error row for an unreadable or missing image.

Needs the compiled binding and the CLI (ctest `python_binding` sets PYTHONPATH and HALIBIT_CLI).
"""
import csv
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from halibit import batch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "fashion-w2a2.halibit")
SAMPLES = sorted(glob.glob(os.path.join(ROOT, "models", "samples", "*.jpg")))


def classify_cli(paths, top):
    """{path: [(label, percent)]} from `halibit classify` (it prints probabilities to 0.1%)."""
    out = subprocess.run([os.environ["HALIBIT_CLI"], "classify", MODEL, *paths, "--top", str(top)],
                         check=True, capture_output=True, text=True).stdout
    result, current = {}, None
    for line in out.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+(.+)$", line)
        if m:
            result[current].append((m.group(2), float(m.group(1))))
        else:
            current = line.rsplit(" (", 1)[0]
            result[current] = []
    return result


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The sample JPEGs split over two directories (to check the sorted, recursive listing) and a
    broken JPEG."""
    d = tmp_path_factory.mktemp("images")
    for sub in ("a", "b"):
        (d / sub).mkdir()
    for i, s in enumerate(SAMPLES):
        shutil.copy(s, d / ("a" if i % 2 else "b") / os.path.basename(s))
    (d / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return d


def test_list_images(images, tmp_path):
    listed = batch.list_images([str(images)])
    assert listed == sorted(str(p) for p in images.glob("*/*.jpg"))  # a/ before b/, names sorted
    assert len(listed) == len(SAMPLES) + 1
    lst = tmp_path / "list.txt"
    lst.write_text(f"# two images\n{SAMPLES[1]}\n\n{SAMPLES[0]}\n")
    assert batch.list_images([f"@{lst}", "missing.png"]) == [SAMPLES[1], SAMPLES[0], "missing.png"]


@pytest.mark.parametrize("read_on", ["workers", "client"])
def test_local_cluster_matches_classify(images, tmp_path, read_on):
    from distributed import Client, LocalCluster
    paths = batch.list_images([str(images)]) + [str(tmp_path / "missing.png")]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        rows = batch.classify(MODEL, paths, client, top=3, chunk=4, read_on=read_on)
    assert [r[0] for r in rows] == list(range(len(paths))) and [r[1] for r in rows] == paths
    good = [p for p in paths if not p.endswith(("broken.jpg", "missing.png"))]
    want = classify_cli(good, 3)
    for index, path, error, best in rows:
        if path.endswith("broken.jpg"):
            assert error.startswith(f"{path}: ") and "JPEG" in error, error
            assert best == []
        elif path.endswith("missing.png"):
            assert "No such file or directory" in error and best == []
        else:
            assert error == ""
            assert [label for label, _ in best] == [label for label, _ in want[path]], path
            for (_, p), (_, percent) in zip(best, want[path]):
                assert abs(100 * p - percent) <= 0.05 + 1e-9, (path, p, percent)


def test_command_line_writes_the_csv(images, tmp_path):
    out = tmp_path / "results.csv"
    r = subprocess.run([sys.executable, "-m", "halibit.batch", MODEL, str(images), "--scheduler", "local",
                        "--workers", "2", "--top", "2", "--out", str(out)], capture_output=True, text=True,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert re.search(r"classified \d+/\d+ images \(1 errors\)", r.stderr)
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["index", "image", "error", "label1", "p1", "label2", "p2"]
    assert [row[1] for row in rows[1:]] == batch.list_images([str(images)])
    broken = [row for row in rows[1:] if row[1].endswith("broken.jpg")]
    assert len(broken) == 1 and broken[0][2] and broken[0][3:] == ["", "", "", ""]
    assert all(row[3] and float(row[4]) > float(row[6]) for row in rows[1:] if not row[2])


def test_a_bad_model_fails_before_any_work(tmp_path):
    bad = tmp_path / "bad.halibit"
    bad.write_bytes(b"\x00" * 4)
    r = subprocess.run([sys.executable, "-m", "halibit.batch", str(bad), SAMPLES[0], "--out", str(tmp_path / "o.csv")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{bad}: truncated: 4 bytes" in r.stderr
