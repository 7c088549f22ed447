"""A tiny corpus + detector run in the contract's layout, built from the embedded sample videos.

Used by the dashboard tests and for screenshots before a real corpus exists. Real items are centre
crops of a few frames of ``data/sample/videos``; "fake" items are visibly altered copies of another
identity's frames (a stand-in, not a generator). Scores in the run are made up but deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.common import SAMPLE_DIR, write_json_atomic, write_parquet_atomic
from dashboard.data import MANIFEST_COLUMNS
from dashboard.media import encode_mp4, read_frames

IDENTITIES = ("d0", "d3", "d6")


def _crop_frames(video: Path, n_frames: int, size: int) -> np.ndarray:
    import cv2

    frames = read_frames(video, max_frames=n_frames)  # (N, H, W, 3)
    h, w = frames.shape[1:3]
    side = int(min(h, w) * 0.6)
    y0, x0 = int(h * 0.12), (w - side) // 2
    crops = frames[:, y0:y0 + side, x0:x0 + side]
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in crops])


def _template_landmarks(size: int) -> np.ndarray:
    """A plausible 68-point face layout (iBUG order) scaled to ``size``: float32 (68, 2)."""
    pts = []
    t = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    pts += list(zip(0.5 + 0.36 * np.cos(t), 0.45 + 0.42 * np.sin(t)))          # jaw 0-16
    pts += [(0.22 + 0.04 * i, 0.36 - 0.02 * (2 - abs(i - 2))) for i in range(5)]   # brows 17-26
    pts += [(0.62 + 0.04 * i, 0.36 - 0.02 * (2 - abs(i - 2))) for i in range(5)]
    pts += [(0.5, 0.42 + 0.05 * i) for i in range(4)]                             # nose 27-35
    pts += [(0.42 + 0.04 * i, 0.64 - 0.01 * (2 - abs(i - 2))) for i in range(5)]
    for cx in (0.32, 0.68):                                                       # eyes 36-47
        a = np.linspace(0, 2 * np.pi, 7)[:-1]
        pts += list(zip(cx + 0.07 * np.cos(a + np.pi), 0.45 + 0.025 * np.sin(a + np.pi)))
    a = np.linspace(0, 2 * np.pi, 13)[:-1]                                        # lips 48-67
    pts += list(zip(0.5 + 0.14 * np.cos(a + np.pi), 0.78 + 0.05 * np.sin(a + np.pi)))
    a = np.linspace(0, 2 * np.pi, 9)[:-1]
    pts += list(zip(0.5 + 0.09 * np.cos(a + np.pi), 0.78 + 0.02 * np.sin(a + np.pi)))
    return (np.asarray(pts, dtype=np.float32) * size)[:68]


def _row(**kw) -> dict:
    row = {c: None for c in MANIFEST_COLUMNS}
    row.update(kw)
    return row


def make_fixture_corpus(root: str | Path, *, size: int = 64, n_frames: int = 6,
                        identities: tuple[str, ...] = IDENTITIES) -> Path:
    """Write CORPUS/ with manifest.parquet, corpus.json, errors.parquet, items and landmarks."""
    import pandas as pd

    root = Path(root)
    (root / "items").mkdir(parents=True, exist_ok=True)
    (root / "landmarks").mkdir(exist_ok=True)
    lm = np.repeat(_template_landmarks(size)[None], n_frames, axis=0)
    split_of = {ident: ("train", "val", "test")[i % 3] for i, ident in enumerate(identities)}
    crops = {ident: _crop_frames(SAMPLE_DIR / "videos" / f"{ident}.mp4", n_frames, size) for ident in identities}
    rows = []
    for i, ident in enumerate(identities):
        frames = crops[ident]
        for part, sl in (("a", slice(0, n_frames)), ("b", slice(None, None, -1))):  # two real clips
            item = f"real_{ident}_{part}"
            encode_mp4(root / "items" / f"{item}.mp4", frames[sl], fps=25, crf=18)
            np.save(root / "landmarks" / f"{item}.npy", lm)
            rows.append(_row(item_id=item, group_id=item, path=f"items/{item}.mp4", label="real",
                             split=split_of[ident], generator="real", source_identity=ident,
                             driver_identity=ident, driver_clip=f"{ident}.mp4", compression="raw",
                             watermarked=False, resolution=size, n_frames=n_frames, fps=25.0,
                             c2pa_signed=False, provenance_status="none",
                             landmarks_path=f"landmarks/{item}.npy"))
        driver = identities[(i + 1) % len(identities)]
        for gen, mode, T in (("fewshot", "ft", 8), ("warp", None, 1)):
            fake = _fake_frames(frames, crops[driver], gen)
            group = f"{gen}_{ident}_by_{driver}"
            for comp, crf in (("raw", 18), ("c23", 35)):
                item = f"{group}_{comp}"
                encode_mp4(root / "items" / f"{item}.mp4", fake, fps=25, crf=crf)
                np.save(root / "landmarks" / f"{item}.npy", lm)
                rows.append(_row(item_id=item, group_id=group, path=f"items/{item}.mp4", label="fake",
                                 split=split_of[ident], generator=gen, generator_version="0.1",
                                 checkpoint_sha256="0" * 64 if gen == "fewshot" else None, mode=mode, T=T,
                                 reenactment="cross", retarget=True, source_identity=ident, source_frames="0",
                                 driver_identity=driver, driver_clip=f"{driver}.mp4", compression=comp,
                                 watermarked=True, resolution=size, n_frames=n_frames, fps=25.0, seed=0,
                                 c2pa_signed=True, watermark_payload="00000000deadbeef",
                                 provenance_status="signed", landmarks_path=f"landmarks/{item}.npy"))
    df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for col in ("T", "resolution", "n_frames", "seed"):  # nullable ints, as forge corpus writes them
        df[col] = df[col].astype("Int64")
    write_parquet_atomic(root / "manifest.parquet", df)
    write_parquet_atomic(root / "errors.parquet",
                         pd.DataFrame({"source": ["data/sample/videos/broken.mp4"], "reason": ["no face found"]}))
    write_json_atomic(root / "corpus.json", {"name": "fixture", "n_items": len(df), "resolution": size,
                                             "note": "dashboard test fixture (fakes are altered copies)"})
    return root


def _fake_frames(source: np.ndarray, driver: np.ndarray, generator: str) -> np.ndarray:
    """A visibly different stand-in for a render: blend + tint (fewshot) or a shifted copy (warp)."""
    if generator == "fewshot":
        mix = 0.7 * source.astype(np.float32) + 0.3 * driver.astype(np.float32)
        mix[..., 2] *= 0.85
        return np.clip(mix, 0, 255).astype(np.uint8)
    return np.roll(source, shift=3, axis=2)


def fixture_scores(manifest) -> "pd.DataFrame":  # noqa: F821
    """Deterministic video scores: fakes mostly high, one warp fake missed, one real flagged."""
    import pandas as pd

    rng = np.random.default_rng(0)
    scores = []
    for _, r in manifest.iterrows():
        base = 0.8 if r["label"] == "fake" else 0.2
        if r["generator"] == "warp" and r["compression"] == "c23":
            base = 0.3  # the hard case: compressed warp fakes
        scores.append(float(np.clip(base + rng.normal(0, 0.08), 0.01, 0.99)))
    out = pd.DataFrame({"item_id": manifest["item_id"], "label": manifest["label"], "score": scores})
    fp = out.index[out["label"] == "real"][0]
    out.loc[fp, "score"] = 0.93  # a confident false positive
    return out


def make_fixture_run(run: str | Path, corpus: str | Path, eval_name: str = "test") -> Path:
    """DRUN/ with config.yaml, metrics.json and eval/<name>/{metrics.json, scores_*.csv, roc/pr/reliability.png}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import yaml
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    from dashboard.data import load_manifest

    run = Path(run)
    ev = run / "eval" / eval_name
    ev.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(corpus)
    videos = fixture_scores(manifest)
    y = (videos["label"] == "fake").astype(int).to_numpy()
    metrics = {"auc": float(roc_auc_score(y, videos["score"])),
               "ap": float(average_precision_score(y, videos["score"])),
               "accuracy": float(((videos["score"] >= 0.5).astype(int) == y).mean()), "n": int(len(y)),
               "by": {"generator": {g: {"auc": float(roc_auc_score(y[m | (y == 0)], videos["score"][m | (y == 0)])),
                                        "n_fake": int(m.sum())}
                                    for g in ("fewshot", "warp")
                                    for m in [(manifest["generator"] == g).to_numpy()]}}}
    (run / "config.yaml").write_text(yaml.safe_dump({"detector": "fixture_cnn", "resolution": 64, "epochs": 1}))
    write_json_atomic(run / "metrics.json", {"auc": 0.9, "ap": 0.88, "loss": 0.41})
    write_json_atomic(ev / "metrics.json", metrics)
    videos.to_csv(ev / "scores_videos.csv", index=False)
    rows = []
    for _, r in videos.iterrows():
        n = int(manifest.loc[manifest["item_id"] == r["item_id"], "n_frames"].iloc[0])
        for f in range(n):
            rows.append({"item_id": r["item_id"], "frame": f, "label": r["label"],
                         "score": float(np.clip(r["score"] + 0.05 * np.sin(f), 0, 1))})
    pd.DataFrame(rows).to_csv(ev / "scores_frames.csv", index=False)
    for name, (xs, ys, xl, yl) in {
            "roc.png": (*roc_curve(y, videos["score"])[:2], "FPR", "TPR"),
            "pr.png": (*precision_recall_curve(y, videos["score"])[1::-1], "recall", "precision"),
            "reliability.png": ([0, 1], [0, 1], "predicted", "observed")}.items():
        fig, ax = plt.subplots(figsize=(3, 3), dpi=60)
        ax.plot(xs, ys)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        fig.tight_layout()
        fig.savefig(ev / name)
        plt.close(fig)
    return run


def make_fixture_results(results: str | Path) -> Path:
    """A ``detect_cross.json`` study file with a train x test generator AUC matrix."""
    results = Path(results)
    write_json_atomic(results / "detect_cross.json", {
        "study": "cross-generator",
        "auc": {"fewshot": {"fewshot": 0.97, "warp": 0.71}, "warp": {"fewshot": 0.64, "warp": 0.95}},
        "robustness": {"jpeg_quality": [{"level": None, "auc": 0.95}, {"level": 70, "auc": 0.83},
                                        {"level": 30, "auc": 0.61}]},
    })
    return results


def make_fixture_tree(root: str | Path, *, size: int = 48, n_frames: int = 4) -> Path:
    """``root/corpus`` (:func:`make_fixture_corpus`), ``root/runs/cnn`` (a run scored on it) and
    ``root/results`` (a study file): what the dashboard's ``--corpus``/``--runs``/``--results`` open."""
    root = Path(root)
    corpus = make_fixture_corpus(root / "corpus", size=size, n_frames=n_frames)
    make_fixture_run(root / "runs" / "cnn", corpus)
    make_fixture_results(root / "results")
    return root


def synthetic_manifest(n: int, template) -> "pd.DataFrame":  # noqa: F821
    """``n`` rows cycling over ``template``'s rows (same files), unique item ids: for load-time tests."""
    import pandas as pd

    idx = np.arange(n) % len(template)
    df = template.iloc[idx].reset_index(drop=True).copy()
    df["item_id"] = [f"{a}_{i:05d}" for i, a in enumerate(df["item_id"])]
    df["seed"] = np.arange(n)
    return pd.DataFrame(df)

