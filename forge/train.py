"""Meta-learning of E, G (with P) and D over episodes of K frames + 1 target (Zakharov et al. 2019).

One step: a G update minimising L_CNT + L_ADV + L_MCH over E, G, P, then ``d_steps`` D updates with the
hinge loss (the first reuses the step's fakes, later ones draw fresh episodes). The run directory holds
``config.yaml``, ``run.json``, ``log.jsonl`` + ``log.csv`` (every loss term), ``samples/step_*.png``
(source | landmarks | output | target) and ``checkpoint.pt`` (atomic; exact resume: models, optimisers,
step, RNG states).

Deviation (stated in run.json): L_MCH's gradient reaches E in the G update (W_i detached) and W in the D
update (e_hat detached), so each network is updated by its own optimiser.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from core.common import (FaceforgeError, atomic_write, get_logger, remove_stale_temps, save_config,
                         write_json_atomic)
from forge.config import ModelConfig, TrainConfig
from forge.data.episodes import Episode, EpisodeSampler, to_uint8
from forge.dist import DistContext, average_gradients, barrier, broadcast_module
from forge.losses import (ContentLoss, discriminator_hinge, embedding_match, generator_adversarial)

log = get_logger("train")
CHECKPOINT = "checkpoint.pt"
GUIDE_FIELDS = ("guide_sources", "guide_tau")   # how the guide is built, not the weights: a new phase may change them


def _sum(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(terms.values())


class MetaTrainer:
    def __init__(self, cfg: TrainConfig, cache, out: str | Path, device: str = "cpu",
                 ctx: DistContext | None = None):
        from forge.model import build_models

        self.cfg, self.out, self.ctx = cfg, Path(out), ctx or DistContext()
        self.device = torch.device(device)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        if int(cache.resolution) != cfg.model.resolution:
            raise FaceforgeError(f"cache resolution {cache.resolution} != model resolution {cfg.model.resolution}")
        self.sampler = EpisodeSampler(cache, cfg.k_shot, cfg.holdout, cfg.seed, self.ctx.rank,
                                      with_guide=cfg.model.generator == "warp_guided",
                                      guide_sources=cfg.model.guide_sources, guide_tau=cfg.model.guide_tau,
                                      guide_single_p=cfg.guide_single_p)
        self.model_cfg = dataclasses.replace(cfg.model, n_videos=len(self.sampler))
        torch.manual_seed(cfg.seed)
        E, G, D = build_models(self.model_cfg)
        self.E, self.G, self.D = (m.to(self.device) for m in (E, G, D))
        for m in (self.E, self.G, self.D):
            broadcast_module(m, self.ctx)
        self.content = ContentLoss(cfg.content).to(self.device)
        self.cross_face = None
        if cfg.cross_batch:
            if cfg.model.generator != "warp_guided":
                raise FaceforgeError("cross_batch > 0 needs generator: warp_guided")
            from forge.face_loss import FaceNetLoss

            self.cross_face = FaceNetLoss(cfg.cross_identity_weight, 0.0, self.device)
        self.g_params = list(self.E.parameters()) + list(self.G.parameters())
        self.opt_g = torch.optim.Adam(self.g_params, lr=cfg.lr_g, betas=tuple(cfg.betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
        if cfg.compile:
            self.fE, self.fG, self.fD = (torch.compile(m) for m in (self.E, self.G, self.D))
        else:
            self.fE, self.fG, self.fD = self.E, self.G, self.D
        self.step, self.nan_streak, self.elapsed = 0, 0, 0.0
        self._resume()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "sampler": self.sampler.state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "E": self.E.state_dict(), "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "step": self.step, "rng": rng, "elapsed": self.elapsed,
            "model_cfg": dataclasses.asdict(self.model_cfg),
            "train_cfg": json.dumps(dataclasses.asdict(self.cfg)),
            "meta": self.meta(),
        }

    def meta(self) -> dict:
        world = self.ctx.world_size
        return {"content_loss": self.content.kind, "content_loss_detail": self.content.description,
                "episodes_seen": self.step * self.cfg.batch_size * world,
                "images_seen": self.step * self.cfg.batch_size * world * (self.cfg.k_shot + 1),
                "train_seconds": round(self.elapsed, 1), "training_videos": self.sampler.video_ids,
                "holdout": list(self.cfg.holdout), "resolution": self.model_cfg.resolution,
                "generator": self.model_cfg.generator, "phases": self.phases,
                "cross_episodes": (f"{self.cfg.cross_batch} per step (forge.data.cross): face-net 1 - cos to the "
                                   f"sources x {self.cfg.cross_identity_weight:g} + L1 to the valid guide x "
                                   f"{self.cfg.cross_anchor_weight:g}") if self.cfg.cross_batch else None}

    def _resume(self) -> None:
        path, self.phases = self.out / CHECKPOINT, []
        if not path.exists():
            if self.cfg.init_from:
                self._init_from(Path(self.cfg.init_from))
            return
        ck = self._load_states(path, f"{path} was trained with a different model config; use a new --out")
        self.phases = list(ck.get("meta", {}).get("phases", []))
        torch.set_rng_state(ck["rng"]["torch"].cpu())
        if "cuda" in ck["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([t.cpu() for t in ck["rng"]["cuda"]])
        if self.ctx.rank == 0:
            self.sampler.set_state(ck["rng"]["sampler"])
        else:  # other ranks: same seed sequence, advanced by the step count
            self.sampler.rng = np.random.default_rng([self.cfg.seed, self.ctx.rank, self.step])
        log.info("resumed %s at step %d", path, self.step)

    def _load_states(self, path: Path, mismatch: str, may_differ: tuple[str, ...] = ()) -> dict:
        """A run's checkpoint into E, G, D, both optimisers, step and elapsed (same model config but for
        the fields ``may_differ``, else ``mismatch`` is raised); returns the checkpoint."""
        from forge.checkpoint import load_checkpoint

        ck = load_checkpoint(path, map_location=self.device)
        try:   # older checkpoints lack newer fields: compare with their defaults filled in
            theirs = dataclasses.asdict(ModelConfig(**ck.get("model_cfg")))
        except (TypeError, ValueError):
            raise FaceforgeError(mismatch) from None
        ours = dataclasses.asdict(self.model_cfg)
        if any(theirs[k] != ours[k] for k in ours if k not in may_differ):
            raise FaceforgeError(mismatch)
        for name in ("E", "G", "D", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(ck[name])
        self.step, self.elapsed = int(ck["step"]), float(ck.get("elapsed", 0.0))
        return ck

    def _init_from(self, path: Path) -> None:
        """Start this run from another run's weights and optimiser states (its step count and training time
        carry on; its losses and phases are recorded in ``meta.phases``)."""
        ck = self._load_states(path, f"init_from {path} has a different model config (or training videos)",
                               may_differ=GUIDE_FIELDS)
        for opt, lr in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):  # this phase's rates
            for group in opt.param_groups:
                group["lr"] = lr
        meta = ck.get("meta", {})
        self.phases = [*meta.get("phases", []), {
            "run": str(path.parent), "until_step": self.step, "train_seconds": round(self.elapsed, 1),
            "content_loss": meta.get("content_loss"), "content_loss_detail": meta.get("content_loss_detail")}]
        log.info("initialised from %s at step %d", path, self.step)

    def save(self) -> None:
        if not self.ctx.is_main:
            return
        from forge.checkpoint import save_checkpoint

        save_checkpoint(self.out / CHECKPOINT, self.state_dict())

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        if self.device.type == "cuda" and self.cfg.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def train_step(self) -> tuple[dict[str, float], Episode, torch.Tensor]:
        cfg = self.cfg
        ep = self.sampler.sample(cfg.batch_size).to(self.device)
        # ---- G update: E, G, P minimise L_CNT + L_ADV + L_MCH
        self.D.requires_grad_(False)
        with self._autocast():
            e_hat = self.fE(ep.x_src, ep.y_src)  # (B, K, 3, S, S) x2 -> (B, N)
            fake = self.fG(ep.y_tgt, self.G.project(e_hat), ep.guide)  # (B, 3, S, S)
            w = self.D.W[ep.video]  # (B, N), no grad here
            r_fake, f_fake = self.fD(fake, ep.y_tgt, w)
            with torch.no_grad():
                _, f_real = self.fD(ep.x_tgt, ep.y_tgt, w)
            terms = {**self.content(fake, ep.x_tgt, ep.p_tgt),
                     **generator_adversarial(r_fake, f_fake, f_real, cfg.lambda_fm, cfg.lambda_adv),
                     **embedding_match(w, e_hat, cfg.lambda_mch)}
            if cfg.cross_batch:
                terms.update(self._cross_terms())
            loss_g = _sum(terms).float()
        self.D.requires_grad_(True)
        finite = bool(torch.isfinite(loss_g))
        if finite:
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            average_gradients(self.g_params, self.ctx)
            self.opt_g.step()
        # ---- D updates: hinge (+ L_MCH pulling W_i towards the detached e_hat)
        fake_d, e_d, ep_d = fake.detach(), e_hat.detach(), ep
        d_terms: dict[str, torch.Tensor] = {}
        for j in range(cfg.d_steps):
            if j > 0:
                ep_d = self.sampler.sample(cfg.batch_size).to(self.device)
                with torch.no_grad(), self._autocast():
                    e_d = self.fE(ep_d.x_src, ep_d.y_src)
                    fake_d = self.fG(ep_d.y_tgt, self.G.project(e_d), ep_d.guide)
            with self._autocast():
                w = self.D.W[ep_d.video]
                r_real, _ = self.fD(ep_d.x_tgt, ep_d.y_tgt, w)
                r_fk, _ = self.fD(fake_d, ep_d.y_tgt, w)
                d_terms = {**discriminator_hinge(r_real, r_fk), "d_mch": embedding_match(w, e_d, cfg.lambda_mch)["mch"]}
                loss_d = _sum(d_terms).float()
            if not torch.isfinite(loss_d):
                finite = False
                continue
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            average_gradients(list(self.D.parameters()), self.ctx)
            self.opt_d.step()
        self.nan_streak = 0 if finite else self.nan_streak + 1
        if self.nan_streak > cfg.max_nan_skips:
            raise FaceforgeError(f"training diverged: {self.nan_streak} consecutive non-finite steps at step {self.step}")
        self.step += 1
        row = {k: float(v.detach()) for k, v in terms.items()}
        row.update({k: float(v.detach()) for k, v in d_terms.items()})
        row.update(loss_g=float(loss_g.detach()), loss_d=float(loss_d.detach()), r_real=float(r_real.detach().mean()),
                   r_fake=float(r_fake.detach().mean()), finite=finite)
        if ep.guide is not None:  # log only: the output's and the warp guide's own L1 to the target
            row.update(out_l1=float((fake.detach() - ep.x_tgt).abs().mean()),
                       warp_l1=float((ep.guide[:, :3] - ep.x_tgt).abs().mean()))
        return row, ep, fake.detach()

    def _cross_terms(self) -> dict[str, torch.Tensor]:
        """Cross-identity episodes (``forge.data.cross``): the face net's 1 - cos between each output and
        the mean descriptor of its K source frames, + L1 to its own warp guide where the guide is valid."""
        from forge.data.cross import sample_cross

        cfg, ep = self.cfg, sample_cross(self.sampler, self.cfg.cross_batch).to(self.device)
        b, k = ep.x_src.shape[:2]
        source = self.cross_face.describe(ep.x_src.flatten(0, 1), ep.p_src.flatten(0, 1)).view(b, k, -1).mean(1)
        fake = self.fG(ep.y_tgt, self.G.project(self.fE(ep.x_src, ep.y_src)), ep.guide)   # (b, 3, S, S)
        valid = ep.guide[:, 3:]                                                             # (b, 1, S, S)
        anchor = ((fake - ep.guide[:, :3]).abs() * valid).sum() / (3 * valid.sum() + 1e-6)
        return {"x_id": cfg.cross_identity_weight * self.cross_face.identity_to(fake, ep.p_tgt, source),
                "x_anchor": cfg.cross_anchor_weight * anchor}

    # ------------------------------------------------------------------ outputs
    def _write_samples(self, ep: Episode, fake: torch.Tensor) -> None:
        from PIL import Image

        n = min(4, fake.shape[0])
        cols = [ep.x_src[:n, 0], ep.y_tgt[:n], fake[:n], ep.x_tgt[:n]]  # source | landmarks | output | target
        if ep.guide is not None:
            cols.insert(2, ep.guide[:n, :3])  # source | landmarks | warp guide | output | target
        grid = np.concatenate([np.concatenate(list(to_uint8(c)), axis=0) for c in cols], axis=1)
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        with atomic_write(path) as f:
            Image.fromarray(grid).save(f, format="PNG")

    def _truncate_logs(self) -> None:
        """On resume, drop log rows written after the checkpoint (they will be redone)."""
        jl = self.out / "log.jsonl"
        if not jl.exists():
            return
        rows = [r for r in map(_json_line, jl.read_text().splitlines()) if r is not None and r["step"] <= self.step]
        with atomic_write(jl, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        self._rewrite_csv(rows)

    def _rewrite_csv(self, rows: list[dict]) -> None:
        with atomic_write(self.out / "log.csv", "w") as f:
            if rows:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)

    def _append_log(self, row: dict) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        csv_path = self.out / "log.csv"
        new = not csv_path.exists() or csv_path.stat().st_size == 0
        with open(csv_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def _write_run_info(self) -> None:
        from forge.model.blocks import count_params
        from forge.model.warp_guided import DESIGN

        save_config(self.cfg, self.out / "config.yaml")
        write_json_atomic(self.out / "run.json", {
            **self.meta(), "model_cfg": dataclasses.asdict(self.model_cfg),
            "world_size": self.ctx.world_size, "device": str(self.device),
            "skipped_videos": self.sampler.skipped,
            "params": {"E": count_params(self.E), "G": count_params(self.G), "D": count_params(self.D)},
            "notes": ["L_MCH: gradient to E in the G update (W detached), to W in the D update (e_hat detached)",
                      "L_MCH uses the mean absolute difference (the paper's L1 norm divided by N)",
                      "AdaIN scale is 1 + gamma (gamma from P e_hat)"]
                     + ([DESIGN] if self.model_cfg.generator == "warp_guided" else [])})

    # ------------------------------------------------------------------ loop
    def run(self, steps: int | None = None, max_minutes: float | None = None, progress: bool = True) -> dict:
        from tqdm import tqdm

        cfg, total = self.cfg, steps if steps is not None else self.cfg.steps
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self.out, recursive=True)   # checkpoint/sample temps of a killed run
            self._write_run_info()
            self._truncate_logs()
        t_start, last_ckpt = time.monotonic(), time.monotonic()
        bar = tqdm(total=total, initial=self.step, disable=not (progress and self.ctx.is_main), desc="meta-train")
        row = {}
        while self.step < total:
            t0 = time.perf_counter()
            row, ep, fake = self.train_step()
            dt = time.perf_counter() - t0
            self.elapsed += dt
            bar.update(1)
            if not self.ctx.is_main:
                continue
            if self.step % cfg.log_every == 0 or self.step == total:
                self._append_log({"step": self.step, **row, "sec_per_step": round(dt, 4),
                                  "images_per_s": round(cfg.batch_size * self.ctx.world_size * (cfg.k_shot + 1) / dt, 2),
                                  "time": round(self.elapsed, 1)})
                bar.set_postfix(g=f"{row['loss_g']:.3f}", d=f"{row['loss_d']:.3f}")
            if cfg.sample_every and self.step % cfg.sample_every == 0:
                self._write_samples(ep, fake)
            out_of_time = max_minutes is not None and time.monotonic() - t_start > max_minutes * 60
            if (self.step % cfg.checkpoint_every == 0 or time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60
                    or self.step == total or out_of_time):
                self.save()
                last_ckpt = time.monotonic()
            if out_of_time:
                break
        bar.close()
        if self.ctx.is_main:
            self.save()
            write_json_atomic(self.out / "run.json", {**json.loads((self.out / "run.json").read_text()), **self.meta(),
                                                       "step": self.step})
        barrier(self.ctx)  # every rank returns after rank 0's checkpoint is on disk
        return {"step": self.step, **{k: v for k, v in row.items()}, **self.meta()}


def _json_line(line: str) -> dict | None:
    """One log.jsonl row; None for a blank line or the partial last line of a killed run."""
    try:
        return json.loads(line) if line.strip() else None
    except json.JSONDecodeError:
        return None


def train(cfg: TrainConfig, data, out, device: str | None = None, steps: int | None = None,
          max_minutes: float | None = None, progress: bool = True) -> dict:
    """Meta-train on a prepared cache (a path or a cache object) into ``out`` (resumes when it holds a checkpoint)."""
    from forge.dist import cleanup, init_from_env

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    ctx = init_from_env(device)
    if ctx.enabled and torch.device(device).type == "cuda":
        device = f"cuda:{ctx.local_rank}"
    cache = data
    if isinstance(data, (str, Path)):
        from forge.data.cache import PreparedCache

        cache = PreparedCache(data)
    try:
        return MetaTrainer(cfg, cache, out, device, ctx).run(steps, max_minutes, progress)
    finally:
        cleanup(ctx)


def lr_note(cfg: TrainConfig) -> str:
    return f"Adam lr E,G={cfg.lr_g:g} D={cfg.lr_d:g} betas={tuple(cfg.betas)} d_steps={cfg.d_steps}"


__all__ = ["MetaTrainer", "train", "lr_note"]
