"""The corpus spec: a frozen ``CorpusConfig`` built from YAML (+ ``key=value`` overrides).

A spec names the real sources, the clip geometry, the generators to run (each a ``GeneratorSpec``),
the compression variants, the split ratios and the seed. It is saved as ``CORPUS/spec.yaml`` so a
corpus can be rebuilt or resumed from its own folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.common import REPO_ROOT, FaceforgeError, config_from_dict, load_config

DEFAULT_SPEC = Path(__file__).with_name("default.yaml")

GENERATORS = ("fewshot", "warp")
MODES = ("ff", "ft")
REENACTMENTS = ("self", "cross")
COMPRESSIONS = ("raw", "c23", "c40", "jpeg")
SPLITS = ("train", "val", "test")
CRF = {"c23": 23, "c40": 40}  # FaceForensics++-style H.264 quality levels
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def _as_tuple(v: Any) -> tuple:
    if v is None:
        return ()
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,)


@dataclass(frozen=True)
class GeneratorSpec:
    """One family of fakes: a generator, its fitting mode and shot counts, the reenactment kinds."""

    name: str = "fewshot"                     # "fewshot" (the GAN) | "warp" (piecewise-affine baseline)
    mode: str | None = "ff"                   # fewshot: "ff" (feed-forward) | "ft" (fine-tuned); warp: None
    T: tuple[int, ...] = (1, 8, 32)           # source frames used to fit (warp: 1)
    reenactment: tuple[str, ...] = ("self", "cross")
    retarget: tuple[bool, ...] = (False, True)  # cross-reenactment with/without landmark retargeting
    steps: int | None = None                  # FT fitting steps (None: the Talker's default)
    splits: tuple[str, ...] = SPLITS          # render this family only for sources in these splits

    def __post_init__(self) -> None:
        if self.name not in GENERATORS:
            raise FaceforgeError(f"unknown generator {self.name!r} (choose from {', '.join(GENERATORS)})")
        if self.name == "fewshot" and self.mode not in MODES:
            raise FaceforgeError(f"fewshot mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.name == "warp":
            object.__setattr__(self, "mode", None)
            object.__setattr__(self, "T", (1,))
        T = tuple(int(t) for t in _as_tuple(self.T))
        if not T or min(T) < 1:
            raise FaceforgeError(f"generator {self.name}: T must be positive integers, got {self.T!r}")
        object.__setattr__(self, "T", T)
        reen = _as_tuple(self.reenactment)
        bad = sorted(set(reen) - set(REENACTMENTS))
        if bad or not reen:
            raise FaceforgeError(f"generator {self.name}: reenactment must be from {REENACTMENTS}, got {reen}")
        object.__setattr__(self, "reenactment", reen)
        object.__setattr__(self, "retarget", tuple(bool(r) for r in _as_tuple(self.retarget)) or (False,))
        splits = _as_tuple(self.splits)
        if not splits or set(splits) - set(SPLITS):
            raise FaceforgeError(f"generator {self.name}: splits must be from {SPLITS}, got {splits}")
        object.__setattr__(self, "splits", tuple(s for s in SPLITS if s in splits))


@dataclass(frozen=True)
class CorpusConfig:
    """Everything that decides what a corpus holds; saved next to it as ``spec.yaml``."""

    name: str = "sample"                                    # shown on the corpus card
    sources: tuple[str, ...] = ("data/sample/videos",)     # video files or folders (relative: cwd, then repo)
    identity_from: str = "stem"                             # "stem" (one identity per file) | "parent" (folder)
    resolution: int = 64                                    # S: crops are S x S
    clip_frames: int = 16                                   # N: frames per item (reals and fakes alike)
    clips_per_source: int = 1                               # K: up to K disjoint N-frame clips per source
                                                            #    (fewer when the source is short)
    landmark_backend: str = "auto"                          # faces.landmarks backend
    generators: tuple[GeneratorSpec, ...] = (
        GeneratorSpec("fewshot", "ff", (1, 8, 32), ("self",)),
        GeneratorSpec("fewshot", "ff", (8,), ("cross",), (False, True)),
        GeneratorSpec("fewshot", "ft", (8,), ("self",), (False,), steps=5, splits=("test",)),
        GeneratorSpec("warp", None, (1,)),
    )
    checkpoint: str | None = None                           # Talker checkpoint (None: the shipped one)
    talker_resize: bool = True                              # a Talker of another resolution renders at its
                                                            #    own size, resized to ``resolution`` (the
                                                            #    shipped one renders 128 px)
    compressions: tuple[str, ...] = COMPRESSIONS            # variants written for every item
    jpeg_quality: int = 75                                  # JPEG-per-frame variant quality
    split_ratios: tuple[float, ...] = (0.6, 0.2, 0.2)       # train, val, test (over identities)
    test_identities: tuple[str, ...] = ()                   # always in test (e.g. the generator's held-out
                                                            #    people); they count towards the test share
    seed: int = 0                                           # splits, driver pairing, fitting
    watermark: bool = True                                  # watermark every fake (provenance.watermark)
    unwatermarked_twin: bool = False                        # also write each fake without watermark (signed)
    paste_back: bool = False                                # also write full-frame items pasted into driver frames
    paste_size: int = 256                                   # longest side of the full-frame items
    key_dir: str | None = None                              # signing identity (None: CORPUS/keys, created)
    verify: bool = True                                     # run provenance.verify_file on every signed file
    device: str = "cpu"
    batch_size: int = 16

    def __post_init__(self) -> None:
        gens = tuple(g if isinstance(g, GeneratorSpec) else config_from_dict(GeneratorSpec, g)
                     for g in _as_tuple(self.generators))
        object.__setattr__(self, "generators", gens)
        object.__setattr__(self, "sources", tuple(str(s) for s in _as_tuple(self.sources)))
        object.__setattr__(self, "test_identities", tuple(str(s) for s in _as_tuple(self.test_identities)))
        comps = _as_tuple(self.compressions)
        bad = sorted(set(comps) - set(COMPRESSIONS))
        if bad:
            raise FaceforgeError(f"unknown compression(s) {bad} (choose from {', '.join(COMPRESSIONS)})")
        if "raw" not in comps:
            comps = ("raw",) + comps  # variants are derived from the signed raw render
        object.__setattr__(self, "compressions", tuple(c for c in COMPRESSIONS if c in comps))
        ratios = tuple(float(r) for r in _as_tuple(self.split_ratios))
        if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
            raise FaceforgeError(f"split_ratios must be three non-negative numbers, got {self.split_ratios!r}")
        object.__setattr__(self, "split_ratios", ratios)
        if self.identity_from not in ("stem", "parent"):
            raise FaceforgeError(f"identity_from must be 'stem' or 'parent', not {self.identity_from!r}")
        if not 16 <= self.resolution <= 1024:
            raise FaceforgeError(f"resolution must be in 16..1024, got {self.resolution}")
        if self.clip_frames < 2:
            raise FaceforgeError(f"clip_frames must be >= 2, got {self.clip_frames}")
        if self.clips_per_source < 1:
            raise FaceforgeError(f"clips_per_source must be >= 1, got {self.clips_per_source}")
        if not 1 <= self.jpeg_quality <= 100:
            raise FaceforgeError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")

    @property
    def max_T(self) -> int:
        return max((t for g in self.generators for t in g.T), default=1)

    @property
    def frames_needed(self) -> int:
        """Frames to extract per source: the item clips, then disjoint reference frames for fitting."""
        return self.clips_per_source * self.clip_frames + self.max_T

    def clip_count(self, n_frames: int | None) -> int:
        """How many disjoint clips a source with ``n_frames`` usable frames gives: up to
        ``clips_per_source``, leaving ``max_T`` reference frames after them; at least 1 (its
        largest-T fits then fail and are recorded). ``None`` (not known before extraction): K."""
        if n_frames is None:
            return self.clips_per_source
        return max(1, min(self.clips_per_source, (int(n_frames) - self.max_T) // self.clip_frames))


def load_spec(path: str | Path | None = None, overrides: dict | None = None) -> CorpusConfig:
    """The spec at ``path`` (None: the default = the embedded sample) with ``a.b=value`` overrides."""
    return load_config(CorpusConfig, DEFAULT_SPEC if path is None else path, overrides)


def spec_to_dict(cfg: CorpusConfig) -> dict:
    return dataclasses.asdict(cfg)


def resolve_source(entry: str, base: Path | None = None) -> Path:
    """A spec source path: absolute, else relative to ``base`` (cwd) and then to the repo root."""
    p = Path(entry).expanduser()
    if p.is_absolute():
        return p
    for root in (base or Path.cwd(), REPO_ROOT):
        if (root / p).exists():
            return root / p
    return (base or Path.cwd()) / p


@dataclass(frozen=True)
class Source:
    """One real input video and the identity it shows."""

    source_id: str   # unique safe token (file stem, de-duplicated)
    identity: str
    path: str        # the video file (C2PA ingredient)
    cache: str | None = None       # a ``forge prepare`` cache holding its faces (video id = source_id)
    n_frames: int | None = None    # usable frames, when known before extraction (cache sources)


def is_prepared_cache(path: Path) -> bool:
    from forge.data.cache import CONFIG_FILE, VIDEOS_TABLE

    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / VIDEOS_TABLE).is_file()


def cache_sources(root: Path, base: Path | None = None) -> list[Source]:
    """The ok videos of a prepared cache as sources (faces, landmarks and crop boxes are read from
    it instead of detecting them again)."""
    from forge.data.cache import PreparedCache

    videos = PreparedCache(root).videos
    ok = videos[videos["status"] == "ok"]
    return [Source(str(r.video_id), str(r.identity), str(resolve_source(str(r.source), base)), str(root),
                   int(getattr(r, "n_valid", r.n_frames))) for r in ok.itertuples()]


def list_sources(cfg: CorpusConfig, base: Path | None = None) -> list[Source]:
    """Expand the spec's sources (files or folders) into a sorted, de-duplicated list."""
    from core.common import safe_name

    files: list[Path] = []
    cached: list[Source] = []
    for entry in cfg.sources:
        p = resolve_source(entry, base)
        if is_prepared_cache(p):
            cached += cache_sources(p, base)
        elif p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTS and f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise FaceforgeError(f"corpus source not found: {entry}")
    if not files and not cached:
        raise FaceforgeError("the corpus spec lists no source videos")
    out: list[Source] = list(cached)
    seen: set[str] = {s.source_id for s in cached}
    for f in files:
        sid = base_id = safe_name(f.stem)
        k = 1
        while sid in seen:
            k += 1
            sid = f"{base_id}-{k}"
        seen.add(sid)
        ident = safe_name(f.stem if cfg.identity_from == "stem" else f.parent.name)
        out.append(Source(sid, ident, str(f)))
    return out


__all__ = ["CorpusConfig", "GeneratorSpec", "Source", "load_spec", "list_sources", "DEFAULT_SPEC",
           "COMPRESSIONS", "CRF", "SPLITS"]
