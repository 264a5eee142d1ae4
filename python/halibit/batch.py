"""Command line: classify many JPEG/PNG images on a Dask cluster (docs/scale-out.md).

    /usr/bin/python3 -m halibit.batch MODEL IMAGES... --scheduler local|ADDRESS --out results.csv

IMAGES are image files, directories (every .jpg, .jpeg and .png below them, sorted) and list
files (`@list.txt`: one path per line; blank lines and lines starting with # are skipped). The
model file is sent to every worker once (a broadcast); each worker process loads it once and
each worker thread runs a Session of its own. Images are read and decoded on the workers (so
they need the same paths: a shared file system), or read here and sent with `--read-on client`.
The results are written in input order, one row per image: `index,image,error` and the top-k
labels and probabilities (softmax of logit x output scale, as `halibit classify` prints them).
An image that cannot be read or decoded is a row with its error, not a failed job. Progress goes
to stderr.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import threading
import time

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_images(items: list[str]) -> list[str]:
    """The image paths named by `items` (files, directories, @list files), in order."""
    paths = []
    for item in items:
        if item.startswith("@"):
            with open(item[1:], encoding="utf-8") as f:
                paths += [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        elif os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs.sort()
                found += [os.path.join(root, n) for n in sorted(files) if n.lower().endswith(IMAGE_EXTENSIONS)]
            paths += found
        else:
            paths.append(item)  # a missing file becomes an error row
    return paths


def top_k(logits: np.ndarray, scale: float, labels: list[str], k: int):
    """[(label, probability)] of the k largest logits, as `halibit classify` ranks them."""
    y = logits.astype(np.float64)
    p = np.exp((y - y.max()) * scale)
    p /= p.sum()
    order = sorted(range(len(y)), key=lambda c: -int(logits[c]))  # stable: ties keep class order
    return [(labels[c] if c < len(labels) else f"class {c}", float(p[c])) for c in order[:k]]


# -- on the workers ---------------------------------------------------------------------------

_models: dict = {}  # model digest -> halibit.Model, once per worker process
_models_lock = threading.Lock()
_local = threading.local()  # per worker thread: {digest: halibit.Session}


def _session(model_bytes: bytes, digest: str):
    import halibit
    with _models_lock:
        if digest not in _models:
            _models[digest] = halibit.Model.from_bytes(model_bytes, f"model {digest[:12]}")
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    if digest not in sessions:
        sessions[digest] = halibit.Session(_models[digest], threads=1)
    return sessions[digest]


def classify_chunk(model_bytes: bytes, digest: str, items: list, top: int) -> list:
    """[(index, path, error, [(label, p)])] for a chunk of (index, path, bytes or None)."""
    import halibit
    session = _session(model_bytes, digest)
    model = session.model
    rows, inputs, ok = [], [], []
    for index, path, data in items:
        try:
            if data is None:
                with open(path, "rb") as f:
                    data = f.read()
            inputs.append(halibit.model_input(data, model, path))
            ok.append(len(rows))
            rows.append([index, path, "", []])
        except (OSError, halibit.Error) as e:
            rows.append([index, path, str(e) if isinstance(e, halibit.Error) else f"{path}: {e.strerror or e}", []])
    if inputs:
        logits = session.run(np.stack(inputs))
        for r, y in zip(ok, logits):
            rows[r][3] = top_k(y, model.output_scale, model.labels, top)
    return [tuple(r) for r in rows]


# -- here -------------------------------------------------------------------------------------

def classify(model_path: str, paths: list[str], client, top: int = 3, chunk: int = 32, read_on: str = "workers",
             progress=None) -> list:
    """Rows (index, path, error, top-k) in input order, classified on the cluster of `client`."""
    from distributed import as_completed

    with open(model_path, "rb") as f:
        model_bytes = f.read()
    import halibit
    halibit.Model.from_bytes(model_bytes, model_path)  # a bad model fails here, named, before any work is sent
    digest = hashlib.sha256(model_bytes).hexdigest()
    shipped = client.scatter(model_bytes, broadcast=True, hash=False)

    def item(i, p):
        if read_on == "workers":
            return (i, p, None)
        try:
            with open(p, "rb") as f:
                return (i, p, f.read())
        except OSError:
            return (i, p, None)  # the worker reports it
    chunks = [[item(i, p) for i, p in enumerate(paths[s:s + chunk], start=s)] for s in range(0, len(paths), chunk)]
    # By reference to the importable module (run as __main__, this file's functions would be
    # pickled by value, module state included).
    from halibit.batch import classify_chunk as task
    futures = {client.submit(task, shipped, digest, c, top, pure=False): c for c in chunks}
    rows = [None] * len(paths)
    done = errors = 0
    t0 = time.time()
    for future in as_completed(futures):
        c = futures[future]
        try:
            result = future.result()
        except Exception as e:  # noqa: BLE001 - a lost worker or a crashed task: its images get the error
            result = [(i, p, f"{p}: task failed: {type(e).__name__}: {e}", []) for i, p, _ in c]
        for r in result:
            rows[r[0]] = r
            errors += bool(r[2])
        done += len(result)
        if progress:
            progress(done, len(paths), errors, time.time() - t0)
    return rows


def write_csv(path: str, rows: list, top: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "image", "error"] + [x for k in range(1, top + 1) for x in (f"label{k}", f"p{k}")])
        for index, image, error, best in rows:
            cells = [x for label, p in best for x in (label, f"{p:.6f}")]
            w.writerow([index, image, error] + cells + [""] * (2 * top - len(cells)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m halibit.batch", description=__doc__.splitlines()[0])
    p.add_argument("model", help="a halibit model file")
    p.add_argument("images", nargs="+", help="image files, directories, or @list files")
    p.add_argument("--scheduler", default="local",
                   help="a Dask scheduler address (tcp://host:8786), or 'local' for a LocalCluster here (default)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="worker processes of a local cluster")
    p.add_argument("--threads-per-worker", type=int, default=1, help="threads (sessions) per worker of a local cluster")
    p.add_argument("--out", required=True, help="the results CSV")
    p.add_argument("--top", type=int, default=3, help="labels per image (default 3)")
    p.add_argument("--chunk", type=int, default=32, help="images per task (default 32)")
    p.add_argument("--read-on", choices=("workers", "client"), default="workers",
                   help="where image files are read: on the workers (a shared file system) or here")
    args = p.parse_args(argv)
    if args.top < 1 or args.chunk < 1 or args.workers < 1 or args.threads_per_worker < 1:
        p.error("--top, --chunk, --workers and --threads-per-worker must be at least 1")

    from distributed import Client, LocalCluster

    import halibit
    try:
        paths = list_images(args.images)
    except OSError as e:
        print(f"halibit.batch: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    if not paths:
        print("halibit.batch: no images found", file=sys.stderr)
        return 1
    tty = sys.stderr.isatty()

    def progress(done, total, errors, seconds):
        line = f"classified {done}/{total} images ({errors} errors), {done / max(seconds, 1e-9):.0f} images/s"
        print(("\r" + line) if tty else line, end="" if tty and done < total else "\n", file=sys.stderr, flush=True)

    cluster = None
    try:
        if args.scheduler == "local":
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(args.scheduler, timeout="30s")
        with client:
            rows = classify(args.model, paths, client, args.top, args.chunk, args.read_on, progress)
    except halibit.Error as e:
        print(f"halibit.batch: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"halibit.batch: {args.scheduler if e.filename is None else e.filename}: {e}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.close()
    write_csv(args.out, rows, args.top)
    errors = sum(bool(r[2]) for r in rows)
    print(f"wrote {args.out}: {len(rows)} images, {errors} errors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
