"""Turn the main job's stage results into ``report.md`` + ``report.html`` with PNG figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from dashboard.report import Report, fmt, write_report

FRAMES_PER_STRIP = 5        # frames shown per animation in the sample-frames figure
RESPONSIBLE_USE = (
    "faceforge makes deepfakes in order to measure detectors against them. Every render it makes is "
    "C2PA-signed and carries an invisible watermark; the only exception is the corpus's optional "
    "un-watermarked ablation twins, which are still signed. Use it for research and testing.")


def build_report(out: Path, results: dict[str, dict], cfg) -> tuple[Path, Path]:
    rep = Report("faceforge — main job report")
    rep.p(f"Output folder: `{out}`. Data: the embedded sample ({cfg.sample}). "
          f"Resolution {cfg.resolution} px. Every number below is read from the stage result files in "
          "`stages/*.json` written by this run.")
    rep.p(RESPONSIBLE_USE)
    _timings(rep, results)
    if "prepare" in results:
        _prepare(rep, results["prepare"])
    if "fit" in results:
        _generator(rep, out, results)
    if "eval" in results:
        _eval(rep, out, results["eval"])
    if "corpus" in results:
        _corpus(rep, results["corpus"])
    if "detect" in results:
        _detect(rep, out, results["detect"])
    if "provenance" in results:
        _provenance(rep, results["provenance"])
    rep.h("Open it in the dashboard")
    rep.code(f"faceforge dashboard --corpus {out / 'corpus'} --runs {out / 'detect'}")
    return write_report(rep, out)


def _timings(rep: Report, results: dict) -> None:
    rep.h("Stages and timings")
    total = sum(r.get("seconds", 0.0) for r in results.values())
    rows = [(name, fmt(r.get("seconds"), 1)) for name, r in results.items()] + [("total", fmt(total, 1))]
    rep.table(["stage", "seconds"], rows, caption="wall-clock seconds per stage (2-core CPU unless stated)")


def _prepare(rep: Report, r: dict) -> None:
    rep.h("1. Prepare: faces, landmarks, crops")
    rep.table(["videos", "frames", "frames with a face", "landmark backend", "cache size (MiB)", "failed"],
              [(r["n_videos"], r["n_frames"], r["n_valid_frames"], r["backend"], r["size_mib"],
                len(r.get("failed", [])))])


def _generator(rep: Report, out: Path, results: dict) -> None:
    fit, anim = results["fit"], results.get("animate", {})
    rep.h("2. The few-shot generator: fitting and animation")
    rep.p(f"Checkpoint `{fit['generator_version']}` (sha256 `{fit['checkpoint_sha256'][:16]}…`).")
    rows = [(kind, info["source"], info["T"], ", ".join(info["persons"])) for kind, info in fit["fitted"].items()]
    rep.table(["who", "source", "T", "fitted modes"], rows)
    renders = anim.get("renders", {})
    if renders:
        rows = [(name, r.get("generator"), r.get("retargeted"), r.get("n_frames"), r.get("render_fps"),
                 len(r.get("driver_missing_frames", [])), (r.get("provenance") or {}).get("payload", "–"))
                for name, r in renders.items()]
        rep.table(["render", "generator", "retargeted", "frames", "render frames/s", "driver frames w/o face",
                   "signed; watermark payload"],
                  rows, caption=f"animations driven by {anim.get('driver')}")
        png = _sample_frames_figure(out, renders)
        if png:
            rep.image(png.relative_to(out), "driver | landmarks | output, frames across each animation")


def _sample_frames_figure(out: Path, renders: dict) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forge.data import read_frames

    strips = []
    for name, r in renders.items():
        path = r.get("sbs_path")
        if not path or not Path(path).exists():
            continue
        frames = read_frames(path)  # (N, H, W, 3)
        idx = np.linspace(0, len(frames) - 1, min(FRAMES_PER_STRIP, len(frames))).astype(int)
        strips.append((name, np.concatenate([frames[i] for i in idx], axis=1)))
    if not strips:
        return None
    fig, axes = plt.subplots(len(strips), 1, figsize=(12, 1.6 * len(strips)), squeeze=False)
    for ax, (name, strip) in zip(axes[:, 0], strips):
        ax.imshow(strip)
        ax.set_axis_off()
        ax.set_title(name, fontsize=9, loc="left")
    fig.tight_layout()
    png = out / "figures" / "sample_frames.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _eval(rep: Report, out: Path, r: dict) -> None:
    rep.h("3. Generator evaluation (the paper's protocol, held-out identities)")
    table = r.get("summary") or []
    if table:
        cols = [c for c in ("method", "T", "ssim", "psnr", "csim", "landmark_nme", "landmark_detected", "fid",
                            "n_videos") if c in table[0]]
        rep.table(cols, [[row.get(c) for c in cols] for row in table],
                  caption="means over held-out videos; CSIM from dlib's ResNet descriptor (a relative measure)")
    for key in ("grid_png", "grid"):
        if r.get(key) and Path(r[key]).exists():
            rep.image(_local(out, r[key]), "real | warp | FF | FT per held-out frame")
            break
    notes = list(r.get("notes") or [])
    notes += [f"CSIM: {r['csim_note']}." if r.get("csim_note") else "", f"FID: {r['fid_note']}." if r.get("fid_note") else ""]
    notes.append("landmark_nme: landmark error of the output vs the driving landmarks, normalised by the "
                 "inter-ocular distance; landmark_detected: fraction of outputs where a face was found.")
    rep.p(" ".join(n for n in notes if n))


def _corpus(rep: Report, r: dict) -> None:
    rep.h("4. The benchmark corpus")
    card = r.get("card") or {}
    counts = card.get("counts", {})
    groups = counts.get("groups_by_split_label_generator", {})
    kinds = sorted({(label, gen) for split in groups.values() for label, gens in split.items() for gen in gens})
    if kinds:
        rows = [[split] + [groups[split].get(label, {}).get(gen, 0) for label, gen in kinds]
                for split in ("train", "val", "test") if split in groups]
        rep.table(["split"] + [f"{label}/{gen}" for label, gen in kinds], rows,
                  caption="clips per split (each in every compression variant)")
    by_comp = counts.get("files_by_compression", {})
    if by_comp:
        rep.table(list(by_comp), [list(by_comp.values())], caption="files per compression variant")
    ids = counts.get("identities_by_split", {})
    if ids:
        rep.p("Identity-disjoint splits: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(ids.items())) + ".")
    rep.p(f"Corpus folder: `{r.get('corpus')}`; {counts.get('files', '–')} files; "
          f"{r.get('items_per_s', '–')} jobs/s on this machine; failed jobs: {r.get('jobs_failed', 0)}.")


def _detect(rep: Report, out: Path, r: dict) -> None:
    rep.h("5. Detector on the held-out split")
    m = r.get("metrics", {})
    rows = []
    for level in ("frame", "video"):
        lm = m.get(level) or {}
        if lm:
            rows.append((level, lm.get("auc"), lm.get("ap"), lm.get("eer"), lm.get("accuracy"),
                         lm.get("log_loss"), lm.get("ece"), lm.get("n")))
    if rows:
        rep.table(["level", "AUC", "AP", "EER", "accuracy", "log loss", "ECE", "n"], rows,
                  caption=f"detector `{m.get('detector')}`, run `{r.get('run')}`, test split")
    by = m.get("by", {})
    rows = [(f"{col} = {val}", v.get("auc"), v.get("n_fake")) for col in ("generator", "mode", "T", "reenactment",
            "compression") for val, v in sorted(by.get(col, {}).items())]
    if rows:
        rep.table(["fakes", "video AUC vs all reals", "fake videos"], rows, caption="video-level AUC per kind of fake")
    _default_detector(rep, r.get("default") or {})
    eval_dir = Path(r.get("run", "")) / "eval" / "test"
    for png, caption in (("roc.png", "ROC curve"), ("pr.png", "precision-recall curve"),
                         ("reliability.png", "reliability diagram (calibration)")):
        p = eval_dir / png
        if p.exists():
            rep.image(_local(out, p), caption, width=420)


def _default_detector(rep: Report, d: dict) -> None:
    """The shipped default detector: this corpus's test split (generators it never saw) and the
    measured third-party cross-generator AUC."""
    if not d:
        return
    t, ext = d.get("test") or {}, d.get("external") or {}
    rows = [("this corpus, test split (video)", t.get("auc"), t.get("n_fake"), t.get("n_real"))]
    rows += [(f"  fakes: {g}", v.get("auc"), v.get("n_fake"), t.get("n_real"))
             for g, v in sorted((d.get("by_generator") or {}).items())]
    if ext.get("video_auc") is not None:
        rows.append(("third-party fakes, 8 generators (video)", ext.get("video_auc"), ext.get("n_fake"),
                     ext.get("n_real")))
        rows.append(("  mean over generator families", ext.get("family_mean_auc"), ext.get("n_fake"),
                     ext.get("n_real")))
    rep.table(["shipped default detector", "AUC", "fake videos", "real videos"], rows,
              caption=f"`{d.get('detector')}` trained on self-blended real faces only (no fakes of any "
                      "generator); third-party figures " + (f"from `{d['external_source']}`"
                                                            if d.get("external_source") else "not measured yet"))


def _provenance(rep: Report, r: dict) -> None:
    rep.h("6. Provenance: signed, re-encoded (stripped) and tampered files")
    rows = []
    for name, v in r.get("verdicts", {}).items():
        wm = v.get("watermark") or {}
        rows.append((name, v.get("verdict"), fmt(wm.get("confidence")) if isinstance(wm, dict) else "–",
                     v.get("detail") or v.get("reason") or ""))
    rep.table(["file", "verdict", "watermark confidence", "detail"], rows)


def _local(out: Path, path: str | Path) -> Path:
    """A figure path relative to the report folder (copied in when it lives elsewhere)."""
    path = Path(path)
    try:
        return path.resolve().relative_to(out.resolve())
    except ValueError:
        dst = out / "figures" / path.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst)
        return dst.relative_to(out)
