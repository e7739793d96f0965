"""Training recipes: a YAML file read into frozen dataclasses (STYLE principle 4)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from vidiff.diffusion.schedule import DiffusionConfig


@dataclass(frozen=True)
class DataConfig:
    kind: str = "shapes"  # "shapes" or "folder"
    num_frames: int = 16
    fps: float = 8.0
    resolution: int = 32
    two_object_prob: float = 0.0
    image_prob: float = 0.0  # fraction of steps trained on single frames (joint image-video training)
    style: str = "filled"
    manifest: str | None = None  # folder datasets: CSV/JSONL with path, caption
    frame_stride: int = 1
    lowres: int = 0  # super-resolution: also render each clip at this resolution (the conditioning)
    crop_size: int = 0  # super-resolution: train on random square crops of this size (0: whole frames)
    window_frames: int = 0  # train on random windows of this many frames (0: whole clips)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-4
    warmup_steps: int = 100
    lr_schedule: str = "cosine"  # or "constant"
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    # "bf16" autocast (fast on CPUs with AMX / AVX512-BF16 and on GPUs; on an AVX2-only CPU bf16 matmuls are
    # emulated and ~100x slower than fp32) or "no" (fp32; "fp32" is the same)
    mixed_precision: str = "bf16"
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    snapshot_every: int = 0  # EMA weights for the accuracy-vs-time curve; 0: off
    seed: int = 0
    freeze_spatial: bool = False
    freeze_temporal: bool = False  # train the spatial layers only (style fine-tunes)
    init_from: str | None = None  # a pipeline folder to start from (fine-tuning)
    max_nonfinite: int = 20  # consecutive non-finite losses before the run stops
    threads: int = 0  # torch threads per process; 0: leave the default
    lowres_noise: float = 0.0  # super-resolution: max std of the noise added to the low-res conditioning
    # conditional: loss weight of known pixels (mask M = 1) relative to generated ones, per example
    # normalised to mean 1, so that reproducing the given frame or region is not a few percent of the loss
    known_pixel_weight: float = 1.0
    # > 1: train on noise levels shifted to more noise, log-SNR - 2 log(shift) (vidiff.diffusion.schedule.shift_timesteps)
    timestep_shift: float = 1.0


@dataclass(frozen=True)
class RunConfig:
    task: str = "text-to-video"  # or "conditional" (Lumiere 4.2 <J, C, M>) or "super-resolution"
    model: dict = field(default_factory=lambda: {"preset": "stunet-shapes"})
    diffusion: DiffusionConfig = DiffusionConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    text_encoder: str = "minilm"
    output_dir: str = "runs/default"
    sample: dict = field(default_factory=lambda: {"guidance_scale": 4.0, "num_inference_steps": 25})

    def to_dict(self) -> dict:
        return asdict(self)


def _build(cls, d: dict, where: str):
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)} in '{where}'; allowed: {sorted(names)}")
    return cls(**{f.name: _typed(d[f.name], f.type, f"{where}.{f.name}") for f in fields(cls) if f.name in d})


def _typed(value, kind: str, key: str):
    """Check a recipe value against its field's type. PyYAML (YAML 1.1) reads ``1e-4`` as a string, so a
    float field takes a string that spells a float; anything else of the wrong type is an error."""
    if kind == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "bool": lambda v: isinstance(v, bool),
          "str": lambda v: isinstance(v, str),
          "str | None": lambda v: v is None or isinstance(v, str)}.get(kind)
    if ok is not None and not ok(value):
        hint = " (YAML reads no / yes / on / off as booleans: quote the word)" if isinstance(value, bool) else ""
        raise ValueError(f"{key} must be of type {kind}, got {value!r}{hint}")
    return value


def load_config(path: str | Path, overrides: dict | None = None) -> RunConfig:
    """Read a YAML recipe; raise ValueError naming any unknown key. A recipe may start from another with
    ``base: other.yaml`` (a path relative to it): its sections are merged key by key over the base's."""
    return config_from_dict(_read_recipe(Path(path), ()), overrides)


def _read_recipe(path: Path, seen: tuple[Path, ...]) -> dict:
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} not found")
    if path.resolve() in seen:
        raise ValueError(f"config file {str(path)!r} is its own base")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"config file {str(path)!r} must be a mapping of sections, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    merged = _read_recipe(path.parent / str(base), seen + (path.resolve(),))
    for section, value in raw.items():
        both_dicts = isinstance(value, dict) and isinstance(merged.get(section), dict)
        merged[section] = {**merged[section], **value} if both_dicts else value
    return merged


def config_from_dict(raw: dict, overrides: dict | None = None) -> RunConfig:
    raw = dict(raw)
    for k, v in (overrides or {}).items():  # "train.steps": 10
        section, _, key = k.partition(".")
        if key:
            raw.setdefault(section, {})
            raw[section] = {**raw[section], key: v}
        else:
            raw[section] = v
    top = {f.name for f in fields(RunConfig)}
    unknown = set(raw) - top
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)} in config; allowed: {sorted(top)}")
    task = raw.get("task", "text-to-video")
    from vidiff.pipelines.base import pipeline_class
    pipeline_class(task)  # ValueError naming the allowed tasks
    cfg = RunConfig(
        task=task,
        model=dict(raw.get("model", {"preset": "stunet-shapes"})),
        diffusion=_build(DiffusionConfig, raw.get("diffusion", {}), "diffusion"),
        data=_build(DataConfig, raw.get("data", {}), "data"),
        train=_build(TrainConfig, raw.get("train", {}), "train"),
        text_encoder=raw.get("text_encoder", "minilm"),
        output_dir=raw.get("output_dir", "runs/default"),
        sample=dict(raw.get("sample", {"guidance_scale": 4.0, "num_inference_steps": 25})),
    )
    if cfg.train.mixed_precision not in ("no", "fp32", "bf16"):
        raise ValueError(f"train.mixed_precision must be 'bf16', 'no' or 'fp32', got {cfg.train.mixed_precision!r}")
    for key in ("timestep_shift", "known_pixel_weight"):  # factors where 1 means off
        value = getattr(cfg.train, key)
        if not (isinstance(value, (int, float)) and value >= 1.0):
            raise ValueError(f"train.{key} must be a number >= 1 (1: off), got {value!r}")
    if cfg.train.known_pixel_weight != 1.0 and task != "conditional":
        raise ValueError(f"train.known_pixel_weight applies to task 'conditional' only (this recipe's task is {task!r})")
    return cfg
