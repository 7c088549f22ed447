"""The evaluation's metrics tables: per-rendering scores and the per-(method, T) summary.

- ``Scorer.score(fake, real, landmarks)``: SSIM, PSNR, CSIM (dlib descriptors via the ``faces`` port,
  boxes from the driving landmarks), mouth-region L1 (``forge.metrics.mouth_l1``, 0..255 in the target's
  mouth box) and landmark error of one rendering against the real frames.
- ``real_rows``: the landmark detector's own error on the real target frames (that metric's floor).
- ``summarise``: mean metrics per (method, T), plus two set-level measures over all target frames of
  each: FID (when Inception-v3 weights are present) and FD-face (``forge.metrics.fd_face``: the Frechet
  distance between real and rendered frames' 128-d face descriptors; not FID).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from forge.evaluate import EvalConfig

METRICS = ("ssim", "psnr", "csim", "mouth_l1", "landmark_nme", "landmark_detected")
FD_FACE_NOTE = ("FD-face: Frechet distance between the 128-d dlib ResNet descriptors (faces port) of the real "
                "and the rendered target frames of each (method, T); few frames per set, so a relative "
                "measure within this eval (0 = same distribution); not FID")


class Scorer:
    """Computes the per-frame metrics of rendered vs real frames (loads the models once)."""

    def __init__(self, cfg: EvalConfig):
        from forge.metrics import IdentityEncoder

        self.cfg = cfg
        self.encoder = IdentityEncoder() if cfg.csim else None
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            from forge.data import get_detector

            self._detector = get_detector(self.cfg.landmark_backend)
        return self._detector

    def score(self, fake: np.ndarray, real: np.ndarray, landmarks: np.ndarray) -> dict:
        """fake, real (N, S, S, 3) uint8; landmarks (N, 68, 2) driving -> metric dict (means)."""
        from forge.metrics import cosine, landmark_error, mouth_l1, psnr, ssim

        row = {"ssim": ssim(fake, real), "psnr": psnr(fake, real), "mouth_l1": mouth_l1(fake, real, landmarks)}
        if self.encoder is not None:
            d_fake = self.encoder.describe_batch(fake, landmarks)
            d_real = self.encoder.describe_batch(real, landmarks)
            row["csim"] = float(cosine(d_fake, d_real).mean())
        if self.cfg.landmark_error:
            row.update(landmark_error(fake, landmarks, self.detector).as_dict())
            row["landmark_backend"] = self.detector.name
        return row


def real_rows(videos: list[str], previews: dict, scorer: Scorer, cfg: EvalConfig) -> list[dict]:
    """Landmark error of the detector on the real target frames: the floor of that metric."""
    if not cfg.landmark_error:
        return []
    from forge.metrics import landmark_error

    rows = []
    for video_id in videos:
        key = next((k for k in previews if k[0] == video_id), None)
        if key is None:
            continue
        _, real, ev, lms = previews[key]
        rows.append({"video_id": video_id, "method": "real", "T": 0, "n_eval": int(len(ev)),
                     **landmark_error(real, lms, scorer.detector).as_dict()})
    return rows


def _fd_faces(summary, previews: dict, encoder) -> list[float | None]:
    """FD-face of each summary row: real vs rendered target frames of all its videos."""
    from forge.metrics import fd_face

    real_desc: dict[str, np.ndarray] = {}           # video -> (N, 128); the targets do not depend on T
    out = []
    for method, t in zip(summary["method"], summary["T"]):
        keys = [k for k in previews if k[1] == method and k[2] == t]
        if not keys:
            out.append(None)
            continue
        for k in keys:
            if k[0] not in real_desc:
                real_desc[k[0]] = encoder.describe_batch(previews[k][1], previews[k][3])
        fake = np.concatenate([encoder.describe_batch(previews[k][0], previews[k][3]) for k in keys])
        real = np.concatenate([real_desc[k[0]] for k in keys])
        out.append(fd_face(real, fake) if len(real) >= 2 and len(fake) >= 2 else None)
    return out


def summarise(table, previews: dict, cfg: EvalConfig, encoder=None):
    """Mean metrics per (method, T) + FID and FD-face over all target frames of each; returns
    (summary, fid note). ``encoder``: an ``IdentityEncoder`` (made here when CSIM is on)."""
    from forge.metrics import IdentityEncoder, fid

    metric_cols = [c for c in METRICS if c in table.columns]
    summary = table.groupby(["method", "T"], sort=False)[metric_cols].mean().reset_index()
    summary["n_videos"] = table.groupby(["method", "T"], sort=False)["video_id"].nunique().to_numpy()
    fids = {}
    for method, t in zip(summary["method"], summary["T"]):
        sel = [k for k in previews if k[1] == method and k[2] == t]
        if sel:
            fids[(method, t)] = fid(np.concatenate([previews[k][1] for k in sel]),
                                    np.concatenate([previews[k][0] for k in sel]), cfg.fid_weights)
    summary["fid"] = [fids.get((m, t), {}).get("fid") for m, t in zip(summary["method"], summary["T"])]
    if cfg.csim:
        summary["fd_face"] = _fd_faces(summary, previews, encoder or IdentityEncoder())
    return summary, next((v["fid_note"] for v in fids.values()), "not computed")
