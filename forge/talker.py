"""Inference API of the few-shot talking-head model: load an export, fit a person, render frames.

    talker = Talker.load()                      # the shipped forge/weights/talker128.pt
    person = talker.fit(frames, landmarks, mode="ft")   # (T, S, S, 3) uint8 + (T, 68, 2) crop px
    video = talker.render(person, driver_landmarks)    # (N, 68, 2) -> (N, S, S, 3) uint8

Landmarks are given as coordinates (N, 68, 2) (drawn into the paper's landmark images here) or, for the
paper's G only, as landmark images (N, S, S, 3) uint8. The warp-guided G (``generator: warp_guided``)
also needs the fit frames' coordinates: its person keeps the T frames + landmarks and each rendered
frame gets the warp guide of the nearest one (``forge.guide``); FT fine-tunes it on each fit frame
warped from the nearest other fit frame (T = 1: from itself).

FF (feed-forward): e_hat = mean E over the T frames, psi_hat = P e_hat. FT (fine-tuning, the paper's
few-shot variant): psi' initialised at P e_hat and D's column at w0 + e_hat, then G (psi, psi') and
D (theta, w', b) fine-tuned on the T frames with L_CNT + L_ADV and the hinge loss (no L_MCH).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.common import REPO_ROOT, FaceforgeError, atomic_path, get_logger, sha256_file
from forge.config import FitConfig, ModelConfig

log = get_logger("talker")
DEFAULT_CHECKPOINT = REPO_ROOT / "forge" / "weights" / "talker128.pt"
PERSON_FORMAT = "faceforge-person"


@dataclass
class Person:
    """A fitted person: the embedding, its AdaIN parameters and, for FT, the fine-tuned generator."""

    mode: str                          # "ff" | "ft"
    e_hat: torch.Tensor                # (N,)
    psi: torch.Tensor                  # (n_psi,) AdaIN parameters used for rendering
    checkpoint_sha256: str
    resolution: int
    n_frames: int                      # T
    g_state: dict | None = None        # FT: fine-tuned generator weights (fp16), else None
    info: dict = field(default_factory=dict)
    frames: np.ndarray | None = None   # (T, S, S, 3) uint8 fit frames (warp-guided G: the warp sources)
    landmarks: np.ndarray | None = None  # (T, 68, 2) their landmarks (warp guide; retargeting)

    def save(self, path: str | Path) -> None:
        state = {"format": PERSON_FORMAT, "mode": self.mode, "e_hat": self.e_hat.float().cpu(),
                 "psi": self.psi.float().cpu(), "checkpoint_sha256": self.checkpoint_sha256,
                 "resolution": self.resolution, "n_frames": self.n_frames, "info": self.info}
        if self.g_state is not None:
            state["g_state"] = {k: v.half().cpu() for k, v in self.g_state.items()}
        if self.frames is not None:
            state["frames"] = torch.from_numpy(np.ascontiguousarray(self.frames))
        if self.landmarks is not None:
            state["landmarks"] = torch.from_numpy(np.asarray(self.landmarks, np.float32))
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "Person":
        from forge.checkpoint import load_checkpoint

        s = load_checkpoint(path)
        if not isinstance(s, dict) or s.get("format") != PERSON_FORMAT:
            raise FaceforgeError(f"{path} is not a fitted person file (make one with `faceforge forge fit`)")
        frames, lms = s.get("frames"), s.get("landmarks")
        return cls(s["mode"], s["e_hat"], s["psi"], s["checkpoint_sha256"], int(s["resolution"]),
                   int(s["n_frames"]), s.get("g_state"), dict(s.get("info", {})),
                   None if frames is None else frames.numpy(), None if lms is None else lms.numpy())


def _check_images(name: str, a, size: int, n: int | None = None) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[1:] != (size, size, 3) or a.dtype != np.uint8:
        raise FaceforgeError(f"{name} must be uint8 (N, {size}, {size}, 3), got {a.dtype} {a.shape}")
    if len(a) == 0:
        raise FaceforgeError(f"{name} is empty")
    if n is not None and len(a) != n:
        raise FaceforgeError(f"{name} has {len(a)} images, expected {n}")
    return a


def _check_landmarks(name: str, a, size: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Landmarks as coordinates (N, 68, 2) or landmark images (N, S, S, 3) uint8 -> (images, coordinates or None)."""
    from forge.data.rasterize import draw_landmarks_batch

    a = np.asarray(a)
    if a.ndim in (2, 3) and a.shape[-2:] == (68, 2):
        pts = a.reshape(-1, 68, 2).astype(np.float32)
        if not np.isfinite(pts).all():
            raise FaceforgeError(f"{name} contain NaN/inf")
        if n is not None and len(pts) != n:
            raise FaceforgeError(f"{name} has {len(pts)} landmark sets, expected {n}")
        return draw_landmarks_batch(pts, size), pts
    return _check_images(name, a, size, n), None


class Talker:
    def __init__(self, state: dict, sha256: str, device: str = "cpu", path: Path | None = None):
        from forge.model import build_models
        from forge.model.discriminator import Discriminator

        self.device = torch.device(device)
        self.model_cfg = ModelConfig(**state["model_cfg"])
        self.meta = dict(state.get("meta", {}))
        self.checkpoint_sha256, self.path = sha256, path
        self.E, self.G, _ = build_models(self.model_cfg, with_discriminator=False)
        self.E.load_state_dict({k: v.float() for k, v in state["E"].items()})
        self.uses_guide = bool(getattr(self.G, "uses_guide", False))
        self.G.load_state_dict({k: v.float() for k, v in state["G"].items()})
        self.E.to(self.device).eval().requires_grad_(False)
        self.G.to(self.device).eval().requires_grad_(False)
        self._d_state = state.get("D")
        self._disc_cls = Discriminator
        self._g_cache: tuple[int, torch.nn.Module] | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu") -> "Talker":
        from forge.checkpoint import load_export

        p = Path(path) if path is not None else DEFAULT_CHECKPOINT
        if path is None and not p.exists():
            raise FaceforgeError(f"the shipped checkpoint {p} is missing (train, then `faceforge forge export`)")
        return cls(load_export(p), sha256_file(p), device, p)

    @property
    def resolution(self) -> int:
        return self.model_cfg.resolution

    @property
    def generator(self) -> str:
        return self.model_cfg.generator

    @property
    def version(self) -> str:
        kind = "wg-" if self.uses_guide else ""
        return f"fewshot-{kind}{self.resolution}px-step{self.meta.get('step', 0)}-{self.checkpoint_sha256[:8]}"

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def embed(self, frames: np.ndarray, landmark_images: np.ndarray) -> torch.Tensor:
        """(T, S, S, 3) uint8 x2 -> e_hat (N,): the mean of E over the T frames."""
        from forge.data.episodes import to_tensor

        x = to_tensor(frames).to(self.device)  # (T, 3, S, S)
        y = to_tensor(landmark_images).to(self.device)
        return self.E(x[None], y[None])[0]  # (1, T, 3, S, S) -> (N,)

    def fit(self, frames, landmarks, mode: str = "ff", steps: int | None = None, seed: int = 0,
            cfg: FitConfig | None = None, progress: bool = False) -> Person:
        """Fit a person on T frames (T, S, S, 3) uint8 and their landmarks (coordinates (T, 68, 2), or
        landmark images (T, S, S, 3) for the paper's G)."""
        S = self.resolution
        frames = _check_images("frames", frames, S)
        landmark_images, points = _check_landmarks("landmarks", landmarks, S, len(frames))
        if self.uses_guide and points is None:
            raise FaceforgeError("the warp-guided generator needs landmark coordinates (T, 68, 2), not landmark images")
        if mode not in ("ff", "ft"):
            raise FaceforgeError(f"mode must be 'ff' or 'ft', got {mode!r}")
        cfg = cfg or self.default_fit_config()
        e_hat = self.embed(frames, landmark_images)  # (N,)
        with torch.no_grad():
            psi = self.G.project(e_hat[None])[0]  # (n_psi,)
        info = {"seed": seed}
        keep = (frames, points) if self.uses_guide else (None, points)  # the warp sources / retargeting
        if mode == "ff":
            return Person("ff", e_hat.cpu(), psi.cpu(), self.checkpoint_sha256, S, len(frames), None, info, *keep)
        steps = cfg.ft_steps if steps is None else int(steps)
        guide = self._fit_guides(frames, points)
        g_state, psi, hist, content = self._finetune(frames, landmark_images, points, guide, e_hat, psi, steps, seed,
                                                     cfg, progress)
        info.update(ft_steps=steps, ft_content_loss=content, ft_lambda_adv=cfg.lambda_adv, ft_lambda_fm=cfg.lambda_fm, ft_first=hist[0] if hist else None, ft_last=hist[-1] if hist else None)
        return Person("ft", e_hat.cpu(), psi.cpu(), self.checkpoint_sha256, S, len(frames), g_state, info, *keep)

    def default_fit_config(self) -> FitConfig:
        """FT's recipe for this export: ``FitConfig()``, without the adversarial and FM terms when G's last
        training phase had none (``meta.adversarial``, written by the export): measured on three training
        people with the step-11438 average, 20 FT steps with them drift the colours (green +10..+15 grey
        levels) and lower SSIM, without them SSIM is higher at 5 and 20 steps."""
        adv = self.meta.get("adversarial") or {}
        if adv.get("lambda_adv") == 0:
            return FitConfig(lambda_adv=0.0, lambda_fm=float(adv.get("lambda_fm", 0.0)))
        return FitConfig()

    def _fit_guides(self, frames: np.ndarray, points: np.ndarray | None):
        """FT targets' warp guides: each fit frame warped from the nearest other fit frame (T = 1: itself)
        -> (T, 4, S, S) tensor, or None for the paper's G."""
        if not self.uses_guide:
            return None
        from forge.guide import guide_tensor

        return guide_tensor(*self.guide_images(frames, points, points, exclude_self=True)).to(self.device)

    def guide_images(self, frames: np.ndarray, points: np.ndarray, targets: np.ndarray,
                     exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """This model's warp guide: fit frames (T, S, S, 3) uint8 + their landmarks (T, 68, 2) warped to
        targets (N, 68, 2), blending its ``guide_sources`` nearest frames -> (warped (N, S, S, 3) uint8,
        validity (N, S, S))."""
        from forge.guide import warp_guide

        m = self.model_cfg
        return warp_guide(frames, points, targets, k=m.guide_sources, tau=m.guide_tau, exclude_self=exclude_self)

    def _finetune(self, frames, landmark_images, points, guide, e_hat, psi0, steps, seed, cfg: FitConfig, progress):
        from tqdm import tqdm

        from forge.data.episodes import to_tensor
        from forge.losses import ContentLoss, discriminator_hinge, generator_adversarial
        from forge.model.blocks import add_spectral_norm, bake_spectral_norm

        if self._d_state is None:
            raise FaceforgeError("this checkpoint has no discriminator; FT needs one (export with D) — use mode 'ff'")
        dev = self.device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            G = add_spectral_norm(copy.deepcopy(self.G).float().train().requires_grad_(True))
            D = self._disc_cls(dataclasses.replace(self.model_cfg, n_videos=1))
            D.load_state_dict({k: v.float() for k, v in self._d_state.items()}, strict=False)
            D.W.data.copy_(e_hat[None].cpu())  # w' = w0 + e_hat (D adds w0)
            add_spectral_norm(D.net)
            D.to(dev).train()
            psi = torch.nn.Parameter(psi0.clone()[None])  # (1, n_psi), psi' initialised at P e_hat
            content = ContentLoss(cfg.content).to(dev)
            opt_g = torch.optim.Adam([*G.parameters(), psi], lr=cfg.lr_g, betas=tuple(cfg.betas))
            opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
            x_all, y_all = to_tensor(frames).to(dev), to_tensor(landmark_images).to(dev)  # (T, 3, S, S)
            p_all = None if points is None else torch.from_numpy(points).to(dev)  # (T, 68, 2): face-net terms
            gen = torch.Generator().manual_seed(seed)
            bs, hist = min(cfg.batch_size, len(frames)), []
            for _ in tqdm(range(steps), disable=not progress, desc="fine-tune"):
                idx = torch.randint(len(frames), (bs,), generator=gen)
                x, y = x_all[idx], y_all[idx]
                w = D.W.expand(bs, -1)
                fake = G(y, psi.expand(bs, -1), None if guide is None else guide[idx])  # (bs, 3, S, S)
                D.requires_grad_(False)
                r_fake, f_fake = D(fake, y, w.detach())
                with torch.no_grad():
                    _, f_real = D(x, y, w)
                terms = {**content(fake, x, None if p_all is None else p_all[idx]), **generator_adversarial(r_fake, f_fake, f_real, cfg.lambda_fm, cfg.lambda_adv)}
                loss_g = sum(terms.values())
                D.requires_grad_(True)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                w = D.W.expand(bs, -1)
                r_real, _ = D(x, y, w)
                r_fk, _ = D(fake.detach(), y, w)
                loss_d = sum(discriminator_hinge(r_real, r_fk).values())
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                hist.append({k: round(float(v.detach()), 5) for k, v in terms.items()} | {"loss_d": round(float(loss_d.detach()), 5)})
        G = bake_spectral_norm(G.eval().requires_grad_(False))
        used = content.description if p_all is not None else content.pixel_description
        return {k: v.detach().half().cpu() for k, v in G.state_dict().items()}, psi.detach()[0], hist, used

    # ------------------------------------------------------------------ rendering
    def _generator_for(self, person: Person) -> torch.nn.Module:
        if person.g_state is None:
            return self.G
        key = id(person.g_state)
        if self._g_cache is None or self._g_cache[0] != key:
            G = copy.deepcopy(self.G)
            G.load_state_dict({k: v.float() for k, v in person.g_state.items()})
            self._g_cache = (key, G.to(self.device).eval())
        return self._g_cache[1]

    @torch.no_grad()
    def render(self, person: Person, landmarks, batch_size: int = 16) -> np.ndarray:
        """Target landmarks (N, 68, 2) (or landmark images (N, S, S, 3) uint8 for the paper's G) -> frames
        (N, S, S, 3) uint8 of ``person``."""
        from forge.data.episodes import to_tensor, to_uint8

        S = self.resolution
        if person.resolution != S:
            raise FaceforgeError(f"person was fitted at {person.resolution} px, this model renders {S} px")
        if person.checkpoint_sha256 != self.checkpoint_sha256:
            log.warning("person was fitted with checkpoint %s, rendering with %s",
                        person.checkpoint_sha256[:8], self.checkpoint_sha256[:8])
        landmark_images, points = _check_landmarks("landmarks", landmarks, S)
        if self.uses_guide and (points is None or person.frames is None or person.landmarks is None):
            raise FaceforgeError("the warp-guided generator renders from landmark coordinates (N, 68, 2) and a "
                                 "person that keeps its fit frames (fit it with this checkpoint)")
        G, psi = self._generator_for(person), person.psi.to(self.device)[None]  # (1, n_psi)
        out = []
        for i in range(0, len(landmark_images), batch_size):
            y = to_tensor(landmark_images[i:i + batch_size]).to(self.device)  # (b, 3, S, S)
            guide = self._render_guide(person, points[i:i + batch_size]) if self.uses_guide else None
            out.append(to_uint8(G(y, psi.expand(len(y), -1), guide)))  # (b, S, S, 3)
        return np.concatenate(out)

    def _render_guide(self, person: Person, points: np.ndarray) -> torch.Tensor:
        """(b, 68, 2) target landmarks -> (b, 4, S, S): the nearest fit frame(s) warped to each."""
        from forge.guide import guide_tensor

        return guide_tensor(*self.guide_images(person.frames, person.landmarks, points)).to(self.device)
