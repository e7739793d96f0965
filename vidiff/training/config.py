"""Training recipes: a YAML file read into frozen dataclasses (STYLE principle 4)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from vidiff.conditioning.text import TextEncoder
from vidiff.diffusion.schedule import DiffusionConfig
from vidiff.registry import EMBEDDED, model_path


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
    frame_stride_max: int = 0  # folder: > frame_stride: each clip's stride drawn from [frame_stride, this] (0: fixed)
    random_start: bool = False  # folder: each clip starts at a random frame (else at its first)
    lowres: int = 0  # super-resolution: also render each clip at this resolution (the conditioning)
    crop_size: int = 0  # super-resolution: train on random square crops of this size (0: whole frames)
    window_frames: int = 0  # train on random windows of this many frames (0: whole clips)
    # shapes: relative draw weight per motion ({"circling": 3}); unlisted motions weigh 1; {}: uniform
    motion_weights: dict = field(default_factory=dict)


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
    # "auto": bf16 where the device runs it natively (a CPU with AMX or AVX512-BF16, a GPU with bf16), else fp32; the
    # run's config.json records which. "bf16" autocast everywhere (on an AVX2-only CPU bf16 is emulated: the default's
    # training step took 40 s against 2.7 s in fp32 on a 2-core AVX2 EPYC), "fp16" (CUDA only, with loss scaling) or
    # "no" (fp32; "fp32" is the same). A precision given to `accelerate launch` (--mixed_precision or its config file)
    # other than "no" wins.
    mixed_precision: str = "auto"
    # train.batch_size is the global batch of one optimizer step: split across processes and accumulation steps
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False  # recompute each U-Net layer in the backward: less memory, ~1/3 more time
    log_with: str | None = None  # an accelerate tracker ("tensorboard", "wandb") beside train_log.jsonl
    num_workers: int = 0  # DataLoader worker processes building batches (0: in the training process)
    # "files": vidiff's (model / EMA safetensors, optimizer); "accelerate": accelerator.save_state (sharded under
    # FSDP / DeepSpeed); "auto": accelerate's when the run is sharded, else files
    checkpoint_format: str = "auto"
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    snapshot_every: int = 0  # EMA weights for the accuracy-vs-time curve; 0: off
    seed: int = 0
    # train only the temporal layers; null: yes for a model inflated from an image model (vidiff inflate), else no
    freeze_spatial: bool | None = None
    freeze_temporal: bool = False  # train the spatial layers only (style fine-tunes)
    # comma-separated parameter-name prefixes: only those parameters train (e.g. "up_blocks,conv_norm_out,conv_out":
    # a style confined to an image U-Net's decoder half); "": every parameter the switches above leave trainable
    train_only: str = ""
    # the spatial (image) layers' learning rate as a fraction of train.lr when both kinds train, e.g. a model inflated
    # from an image model with freeze_spatial false: the image weights move less than the new layers; 1: the same
    spatial_lr_scale: float = 1.0
    # > 0: while the temporal layers train (train.freeze_spatial), each frozen image weight tensor carries Gaussian
    # noise of this fraction of its RMS, drawn anew per micro-batch and removed before the optimizer step, so the
    # motion learnt holds for image models near the original, such as its style fine-tunes
    # (vidiff.training.weight_noise); 0: off
    image_weight_noise: float = 0.0
    init_from: str | None = None  # a pipeline folder to start from (fine-tuning)
    max_nonfinite: int = 20  # consecutive non-finite losses before the run stops
    threads: int = 0  # torch threads per process; 0: leave the default
    lowres_noise: float = 0.0  # super-resolution: max std of the noise added to the low-res conditioning
    # conditional: loss weight of known pixels (mask M = 1) relative to generated ones, per example
    # normalised to mean 1, so that reproducing the given frame or region is not a few percent of the loss
    known_pixel_weight: float = 1.0
    # train on noise levels shifted by log-SNR - 2 log(shift) (vidiff.diffusion.schedule.shift_timesteps): > 1 towards
    # more noise (where a clip's path is decided), < 1 towards less (where fine detail such as corners is drawn)
    timestep_shift: float = 1.0
    # train on timesteps in [timestep_min, timestep_max] only, drawn uniformly (with timestep_shift 1): a noise-range
    # expert (eDiff-I's ensemble of expert denoisers; Wan 2.2's high-noise model), sampled with the model it
    # specialises through vidiff.models.experts.TimestepExperts; null max: the last timestep
    timestep_min: int = 0
    timestep_max: int | None = None
    # > 0: train a LoRA of this rank (peft, on the attention projections) of a text-to-image model instead of its
    # weights; the export holds the fused model and the LoRA file (vidiff.models.lora)
    lora_rank: int = 0
    # > 0: guidance distillation (Meng et al. 2023, stage one): the model learns to give in one forward pass what
    # its frozen starting point (train.init_from) gives with classifier-free guidance at this scale, so that it
    # samples at guidance 1 with half the U-Net work per step; 0: off
    distill_guidance: float = 0.0
    # > 0: add this weight times the MSE of the frame-to-frame differences of the prediction error (in the prediction
    # target's space) to the loss: the error's temporal spectrum weighted by 1 + w 4 sin^2(omega / 2), so what changes
    # between neighbouring frames (a bounce's turn, an object that jumps) weighs up to 1 + 4w times a still part; 0: off
    temporal_diff_weight: float = 0.0
    lora_targets: str = "to_q,to_k,to_v,to_out.0"  # comma-separated module names (diffusers' attention projections;
    # add conv1,conv2 for the ResNet convolutions, which a drawing style lives in)


@dataclass(frozen=True)
class RunConfig:
    task: str = "text-to-video"  # or "conditional" (Lumiere 4.2 <J, C, M>) or "super-resolution"
    model: dict = field(default_factory=lambda: {"preset": "stunet-shapes"})
    diffusion: DiffusionConfig = DiffusionConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    text_encoder: str = "minilm"
    text_features: str = "last"  # or "last+embeddings", "padded" (vidiff.conditioning.text.TextEncoder)
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
          "bool | None": lambda v: v is None or isinstance(v, bool),
          "str": lambda v: isinstance(v, str),
          "str | None": lambda v: v is None or isinstance(v, str),
          "float | None": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
          "dict": lambda v: isinstance(v, dict)}.get(kind)
    if ok is not None and not ok(value):
        hint = " (YAML reads no / yes / on / off as booleans: quote the word)" if isinstance(value, bool) else ""
        raise ValueError(f"{key} must be of type {kind}, got {value!r}{hint}")
    return value


def load_config(path: str | Path, overrides: dict | None = None) -> RunConfig:
    """Read a YAML recipe; raise ValueError naming any unknown key. A recipe may start from another with
    ``base: other.yaml`` (a path relative to it): its sections are merged key by key over the base's."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"a recipe is a YAML file path, got {type(path).__name__}")
    return config_from_dict(_read_recipe(Path(path), ()), overrides)


def _read_recipe(path: Path, seen: tuple[Path, ...]) -> dict:
    if path.is_dir():
        raise ValueError(f"config file {str(path)!r} is a folder; give a recipe file in it (e.g. configs/*.yaml)")
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} not found")
    if path.resolve() in seen:
        raise ValueError(f"config file {str(path)!r} is its own base")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    except OSError as e:
        raise ValueError(f"cannot read config file {str(path)!r}: {e.strerror}") from None
    if raw is None:  # an empty file would otherwise start a full default run
        raise ValueError(f"config file {str(path)!r} is empty; a recipe needs at least output_dir and its sections")
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
    if not isinstance(raw, dict):  # None, a list or a YAML string went to dict() (TypeError, or a baffling ValueError)
        raise ValueError(f"a recipe is a mapping of sections (model:, data:, train:, ...), got {type(raw).__name__}")
    if overrides is not None and not isinstance(overrides, dict):
        raise ValueError(f"overrides are a mapping such as {{'train.steps': 10}}, got {type(overrides).__name__}")
    raw = dict(raw)
    for k, v in (overrides or {}).items():  # "train.steps": 10
        section, _, key = k.partition(".")
        if key and not isinstance(raw.get(section, {}), dict):
            raise ValueError(f"cannot set {k!r}: section {section!r} is not a mapping")
        if key:
            raw.setdefault(section, {})
            raw[section] = {**raw[section], key: v}
        else:
            raw[section] = v
    for section in ("model", "diffusion", "data", "train", "sample"):
        if not isinstance(raw.get(section, {}), dict):
            raise ValueError(f"config section {section!r} must be a mapping (key: value), got {raw[section]!r}")
    for key in ("task", "text_encoder", "text_features", "output_dir"):
        if key in raw and not isinstance(raw[key], str):
            raise ValueError(f"config key {key!r} must be a string, got {raw[key]!r}")
    top = {f.name for f in fields(RunConfig)}
    unknown = set(raw) - top
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)} in config; allowed: {sorted(top)}")
    task = raw.get("task", "text-to-video")
    from vidiff.tasks import get_task

    get_task(task)  # ValueError naming the allowed tasks
    start = raw.get("train", {}).get("init_from")
    if isinstance(start, str) and start in EMBEDDED:  # a shipped model by name ("default"), as --model takes it;
        raw["train"] = {**raw["train"], "init_from": str(model_path(start))}  # it was read as a folder "default"
    cfg = RunConfig(
        task=task,
        model=dict(raw.get("model", {"preset": "stunet-shapes"})),
        diffusion=_build(DiffusionConfig, raw.get("diffusion", {}), "diffusion"),
        data=_build(DataConfig, raw.get("data", {}), "data"),
        train=_build(TrainConfig, raw.get("train", {}), "train"),
        text_encoder=raw.get("text_encoder", "minilm"),
        text_features=raw.get("text_features", "last"),
        output_dir=raw.get("output_dir", "runs/default"),
        sample=dict(raw.get("sample", {"guidance_scale": 4.0, "num_inference_steps": 25})),
    )
    check_ranges(cfg)
    value = cfg.train.known_pixel_weight  # a factor where 1 means off
    if not (isinstance(value, (int, float)) and value >= 1.0):
        raise ValueError(f"train.known_pixel_weight must be a number >= 1 (1: off), got {value!r}")
    value = cfg.train.timestep_shift
    if not (isinstance(value, (int, float)) and 0.01 <= value <= 100):
        raise ValueError(f"train.timestep_shift must be a number in [0.01, 100] (1: off; > 1 more noise, < 1 less), "
                         f"got {value!r}")
    get_task(task).check(cfg)
    return cfg


# (section.key, low, high, what): inclusive bounds; None = unbounded. Every number must also be finite.
RANGES = [
    ("train.steps", 1, None, "the number of optimizer steps"), ("train.batch_size", 1, None, ""),
    ("train.lr", 1e-12, 1.0, ""), ("train.warmup_steps", 0, None, ""), ("train.min_lr_ratio", 0.0, 1.0, ""),
    ("train.weight_decay", 0.0, None, ""), ("train.grad_clip", 0.0, None, "0: no clipping"),
    ("train.ema_decay", 0.0, 1.0, ""), ("train.caption_dropout", 0.0, 1.0, ""),
    ("train.checkpoint_every", 1, None, ""), ("train.keep_checkpoints", 0, None, "0: keep all"),
    ("train.snapshot_every", 0, None, "0: off"), ("train.seed", 0, 2**31 - 1, ""), ("train.max_nonfinite", 1, None, ""),
    ("train.threads", 0, 1024, "0: the default"), ("train.temporal_diff_weight", 0.0, 100.0, "0: off"),
    ("train.spatial_lr_scale", 1e-6, 1.0, "a fraction of train.lr; train.freeze_spatial freezes them"),
    ("train.image_weight_noise", 0.0, 1.0, "a fraction of each image weight tensor's RMS; 0: off"),
    ("train.distill_guidance", 0.0, 100.0, "0: off"), ("train.lora_rank", 0, 1024, "0: off"),
    ("train.gradient_accumulation_steps", 1, 4096, ""), ("train.num_workers", 0, 256, "0: in the training process"),
    ("data.frame_stride_max", 0, 1000, "0: the fixed data.frame_stride"), ("train.lowres_noise", 0.0, 10.0, ""),
    ("data.num_frames", 1, 4096, ""), ("data.fps", 1e-3, 1000.0, ""), ("data.resolution", 1, 8192, ""),
    ("data.two_object_prob", 0.0, 1.0, ""), ("data.image_prob", 0.0, 1.0, ""), ("data.frame_stride", 1, 1000, ""),
    ("data.lowres", 0, 8192, "0: off"), ("data.crop_size", 0, 8192, "0: whole frames"),
    ("data.window_frames", 0, 4096, "0: whole clips"), ("diffusion.num_train_timesteps", 2, 100000, ""),
]
CHOICES = {"train.lr_schedule": ("cosine", "constant"), "train.checkpoint_format": ("auto", "files", "accelerate"),
           "train.mixed_precision": ("auto", "bf16", "fp16", "no", "fp32"), "data.kind": ("shapes", "folder"),
           "data.style": ("filled", "outlined"),
           "diffusion.beta_schedule": ("squaredcos_cap_v2", "linear", "scaled_linear"),
           "diffusion.prediction_type": ("v_prediction", "epsilon", "sample")}


def timestep_range(cfg: RunConfig) -> tuple[int, int]:
    """The inclusive range of training timesteps."""
    last = cfg.diffusion.num_train_timesteps - 1
    return cfg.train.timestep_min, last if cfg.train.timestep_max is None else cfg.train.timestep_max


def check_timestep_range(cfg: RunConfig) -> None:
    lo, hi = timestep_range(cfg)
    last = cfg.diffusion.num_train_timesteps - 1
    if not (all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)) and 0 <= lo <= hi <= last):
        raise ValueError(f"train.timestep_min / train.timestep_max must be integers with 0 <= min <= max <= {last} "
                         f"(diffusion.num_train_timesteps - 1; null max: {last}), got {lo!r} / {hi!r}")
    if (lo, hi) == (0, last):
        return
    if lo > 0 and hi < last:
        raise ValueError(f"train.timestep_min / train.timestep_max train an expert for the high-noise end (min > 0, max "
                         f"{last} or null) or the low-noise end (min 0), not a middle band ({lo}-{hi})")
    if not cfg.train.init_from:
        raise ValueError("train.timestep_min / train.timestep_max train a noise-range expert of the model in "
                         "train.init_from (exported beside it); set train.init_from")
    if cfg.train.timestep_shift != 1.0:
        raise ValueError("train.timestep_min / train.timestep_max draw timesteps uniformly in their range; set "
                         f"train.timestep_shift to 1 (got {cfg.train.timestep_shift!r}) or leave the range whole")


TEXT_FEATURES = TextEncoder.FEATURES
TRACKERS = ("tensorboard", "wandb")  # accelerate's trackers vidiff names (each needs its package)


def check_ranges(cfg: RunConfig) -> None:
    """Every recipe value inside what training can use; one ValueError naming the key and the allowed range."""
    import math

    def get(key):
        section, _, name = key.partition(".")
        return getattr(getattr(cfg, section), name)

    for key, low, high, note in RANGES:
        v = get(key)
        ok = math.isfinite(v) and (low is None or v >= low) and (high is None or v <= high)
        if not ok:
            span = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ValueError(f"{key} must be {span}{f' ({note})' if note else ''}, got {v!r}")
    for key, allowed in CHOICES.items():
        if get(key) not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(allowed)}, got {get(key)!r}")
    g = cfg.diffusion.min_snr_gamma
    if g is not None and not (isinstance(g, (int, float)) and math.isfinite(g) and g > 0):
        raise ValueError(f"diffusion.min_snr_gamma must be a positive number or null, got {g!r}")
    check_timestep_range(cfg)
    if not isinstance(cfg.model, dict) or not isinstance(cfg.sample, dict):
        raise ValueError("the model and sample sections must be mappings (key: value)")
    from vidiff.pipelines.folder import check_defaults

    # the sampling defaults the trained folder records: a bad one was written after the whole run, into a folder
    # that then refused to load, and a misspelt key was recorded and never read
    check_defaults(cfg.sample, cfg.diffusion.num_train_timesteps, prefix="sample.", known_only=True)
    if not isinstance(cfg.output_dir, str) or not cfg.output_dir.strip():
        raise ValueError(f"output_dir must be a folder name, got {cfg.output_dir!r}")
    if not isinstance(cfg.text_encoder, str) or not cfg.text_encoder.strip():
        raise ValueError(f"text_encoder must be 'minilm' or a local transformers folder, got {cfg.text_encoder!r}")
    if cfg.train.freeze_spatial and cfg.train.freeze_temporal:
        raise ValueError("train.freeze_spatial and train.freeze_temporal together would freeze everything")
    unfrozen = cfg.train.freeze_spatial is False or (cfg.train.freeze_spatial is None and not cfg.train.init_from)
    if cfg.train.image_weight_noise and unfrozen:  # (a model from init_from: checked once it is built)
        from vidiff.training.weight_noise import NOT_FROZEN

        raise ValueError(NOT_FROZEN)
    if cfg.train.train_only and cfg.train.lora_rank:
        raise ValueError("train.train_only picks the parameters to train; train.lora_rank trains a LoRA instead: "
                         "use train.lora_targets to place it")
    if cfg.train.init_from is not None and not str(cfg.train.init_from).strip():
        raise ValueError("train.init_from must be a pipeline folder or null")
    if cfg.train.distill_guidance:
        check_distillation(cfg)
    if cfg.text_features not in TEXT_FEATURES:
        raise ValueError(f"text_features must be one of {', '.join(TEXT_FEATURES)}, got {cfg.text_features!r}")
    if cfg.train.log_with is not None and cfg.train.log_with not in TRACKERS:
        raise ValueError(f"train.log_with must be one of {', '.join(TRACKERS)} or null, got {cfg.train.log_with!r}")
    if cfg.data.frame_stride_max and cfg.data.frame_stride_max < cfg.data.frame_stride:
        raise ValueError(f"data.frame_stride_max ({cfg.data.frame_stride_max}) must be 0 or >= data.frame_stride "
                         f"({cfg.data.frame_stride})")
    if cfg.data.kind != "folder" and (cfg.data.random_start or cfg.data.frame_stride_max):
        raise ValueError("data.random_start and data.frame_stride_max sample clips of a folder dataset "
                         "(data.kind: folder); Shapes clips are rendered whole")
    if cfg.data.motion_weights:
        if cfg.data.kind != "shapes":
            raise ValueError("data.motion_weights re-weights the motions of Shapes scenes (data.kind: shapes)")
        from vidiff.shapes.scenes import check_motion_weights
        check_motion_weights(cfg.data.motion_weights, "data.motion_weights")
    preset = cfg.model.get("preset", "stunet-shapes")
    from vidiff.models.unet import PRESETS, check_unet_args

    if not cfg.train.init_from and preset in PRESETS and "inflate" not in cfg.model:
        # a new video U-Net's arguments, checked before the text encoder loads (its constructor raises the same)
        check_unet_args({**PRESETS[preset], **{k: v for k, v in cfg.model.items() if k != "preset"}})
    if cfg.data.lowres and cfg.data.lowres >= cfg.data.resolution:
        raise ValueError(f"data.lowres ({cfg.data.lowres}) must be below data.resolution ({cfg.data.resolution})")


def check_distillation(cfg: RunConfig) -> None:
    """``train.distill_guidance`` needs a text-to-video model to start from, whole-model training and sampling at
    guidance 1; one ValueError naming what to change."""
    if not cfg.train.init_from:
        raise ValueError("train.distill_guidance distils a trained model's guided output: set train.init_from to it")
    if cfg.task != "text-to-video":
        raise ValueError(f"train.distill_guidance distils text guidance of a text-to-video model; task is {cfg.task!r}")
    if cfg.sample.get("guidance_scale") != 1.0:
        raise ValueError(f"a guidance-distilled model samples at guidance 1 (its one pass is guided at "
                         f"{cfg.train.distill_guidance}): set sample.guidance_scale to 1.0, got "
                         f"{cfg.sample.get('guidance_scale')!r}")
    if cfg.train.lora_rank:
        raise ValueError("train.distill_guidance trains the whole model: set train.lora_rank to 0")
