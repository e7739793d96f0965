"""The bad-input corpus: every command, fed what careful users and careless scripts feed it.

Every case must end in exactly one line on stderr that names the problem, exit code 2, no traceback, nothing
written (not even a temporary), and, where the check does not need the model, no model loaded. Run in-process
through ``vidiff.cli.main`` (the entry point's own error handling) to keep the suite quick; the subprocess
tests in test_cli.py cover the real entry point. The count of cases is printed by
``pytest tests/test_bad_input_corpus.py -q`` and quoted in docs (reliability).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from vidiff.cli import main

GEN = ["generate", "a red circle moving left", "--model", "{T2V}"]
ANIMATE = ["animate", "{D}/img.png", "a red circle", "--model", "{COND}"]
INPAINT = ["inpaint", "{D}/clip", "a red circle", "--mask", "{D}/mask.png", "--model", "{COND}"]
CINEMA = ["cinemagraph", "{D}/img.png", "a red circle", "--region", "{D}/mask.png", "--model", "{COND}"]
EDIT = ["edit", "{D}/clip", "a blue square", "--model", "{T2V}"]
UPSCALE = ["upscale", "{D}/clip", "a red circle", "--model", "{SSR}"]
COMMANDS = {"generate": GEN, "animate": ANIMATE, "inpaint": INPAINT, "cinemagraph": CINEMA, "edit": EDIT,
            "upscale": UPSCALE}


def _cases() -> list[tuple[str, list[str], str, bool]]:
    """(id, argv, words the one line must hold, checked before any model loads)."""
    cases = []

    def add(name, argv, words, early=True):
        cases.append((name, argv, words, early))

    # --- captions, every generating command
    captions = {"empty": ("", "empty"), "blank": ("   \t", "empty"), "huge": ("a red circle " * 400, "characters long"),
                "control": ("\x01\x02\x03", "control"), "nul-inside": ("a red\x00circle", "control"),
                "non-utf8": ("a red \udcff\udcfe circle", "UTF-8"), "bidi-private": ("a red \ue000 circle", "control")}
    for cmd, base in COMMANDS.items():
        for cname, (text, words) in captions.items():
            argv = list(base)
            argv[2 if cmd != "generate" else 1] = text
            add(f"{cmd}-caption-{cname}", argv, words)
    add("generate-negative-prompt-control", GEN + ["--negative-prompt", "\x07"], "negative prompt")

    # --- numeric flags at 0, negative, huge, NaN, inf
    ints = {"frames": ["0", "-4", "100000"], "size": ["0", "-8", "100000"], "steps": ["0", "-1", "5000"],
            "seed": ["-1", str(2**70)], "threads": ["-1", "100000"], "window": ["0", "-2", "99999"],
            "stride": ["0", "-2", "99999"], "ssr-steps": ["0", "-1", "5000"], "free-init": ["0", "-1", "11"]}
    floats = {"guidance": ["-1", "1e9", "nan", "inf"], "fps": ["0", "-8", "1e-9", "1e9", "nan", "inf"]}
    common = ["steps", "seed", "threads", "guidance", "fps", "window", "stride", "ssr-steps"]
    flags = {"generate": common + ["frames", "size", "base-window", "base-stride", "free-init"],
             "animate": common + ["frames", "condition-guidance", "free-init"],
             "cinemagraph": common + ["condition-guidance", "free-init"],
             "inpaint": common + ["border", "condition-guidance", "free-init"], "edit": common + ["strength"],
             "upscale": ["seed", "threads", "fps", "window", "stride", "ssr-steps", "frames"]}
    ints.update({"base-window": ["0", "-1", "99999"], "base-stride": ["0", "-1", "99999"], "border": ["0", "-2"]})
    floats.update({"condition-guidance": ["-1", "1e9", "nan", "inf"], "strength": ["-0.1", "1.5", "nan", "inf"]})
    for cmd, names in flags.items():
        for flag in names:
            values = ints.get(flag) or floats[flag]
            for v in values + (["nan", "1.5"] if flag in ints else []):
                argv = list(COMMANDS[cmd])
                if flag == "base-stride":
                    argv += ["--base-window", "4"]
                if flag == "border":
                    argv = [a for a in argv if a not in ("--mask", "{D}/mask.png")]
                add(f"{cmd}--{flag}={v}", argv + [f"--{flag}", v], f"--{flag}")
    add("generate--alpha=2", GEN + ["--style", "{T2V}", "--alpha", "2"], "--alpha")
    add("generate--alpha=nan", GEN + ["--style", "{T2V}", "--alpha", "nan"], "--alpha")
    add("generate-alpha-without-style", GEN + ["--alpha", "0.5"], "give --style too")  # it was ignored
    add("generate--sampler=bogus", GEN + ["--sampler", "bogus"], "sampler", early=False)
    for cmd in ("generate", "edit"):  # the correlated step noise: (0, 1), and its max_t a timestep, only beside it
        for v in ("0", "-1", "1", "1.5", "nan", "inf"):
            add(f"{cmd}--correlated-noise={v}", COMMANDS[cmd] + ["--correlated-noise", v], "--correlated-noise")
        for v in ("0", "-5", "1.5", "nan"):
            add(f"{cmd}--correlated-noise-max-t={v}", COMMANDS[cmd] + ["--correlated-noise", "0.8",
                                                                       "--correlated-noise-max-t", v],
                "--correlated-noise-max-t")
        add(f"{cmd}-correlated-noise-max-t-alone", COMMANDS[cmd] + ["--correlated-noise-max-t", "300"],
            "give --correlated-noise too")
    # options of the super-resolution stage with --base-only, which skips it (they were ignored without a word)
    add("generate-base-only-with-ssr", GEN + ["--base-only", "--ssr", "{SSR}"], "which --base-only skips")
    add("animate-base-only-with-ssr-steps", ANIMATE + ["--base-only", "--ssr-steps", "2"], "which --base-only skips")
    add("edit-base-only-with-window", EDIT + ["--base-only", "--window", "4", "--stride", "2"],
        "--window, --stride set the super-resolution stage")
    # the super-resolution stage's window against its own stride and window (refused after the base clip was made)
    add("generate-ssr-window-under-its-stride", GEN + ["--ssr", "{SSR}", "--window", "1"],
        "--window 1 is shorter than the super-resolution model's own stride")
    add("generate-ssr-stride-over-its-window", GEN + ["--ssr", "{SSR}", "--stride", "6"],
        "--stride (6) must not exceed the super-resolution model's own window")
    add("generate-ssr-stride-over-the-given-window", GEN + ["--ssr", "{SSR}", "--window", "1", "--stride", "2"],
        "--stride (2) must not exceed --window (1)")
    add("generate-window-without-an-ssr-stage", GEN + ["--window", "4"], "names none; give --ssr PATH")
    add("generate-base-stride-without-base-window", GEN + ["--base-stride", "2"], "give --base-window")
    add("generate-base-weighting-without-base-window", GEN + ["--base-weighting", "uniform"], "give --base-window")
    # refused once the model had loaded, in the library's words (ssr_window / ssr_stride / ssr_steps)
    add("animate-ssr-steps-without-an-ssr-stage", ANIMATE + ["--ssr-steps", "2"],
        "--ssr-steps sets the super-resolution stage, and")
    add("animate-ssr-window-under-its-stride", ANIMATE + ["--ssr", "{SSR}", "--window", "1"], "own stride")
    add("upscale-window-under-its-stride", UPSCALE + ["--window", "1"], "--window 1 is shorter")
    # the model's size rule, named as the flag the user gave (it said num_frames / height and width)
    add("generate-frames-4-on-a-3-level-model", GEN + ["--model", "{T2V3}", "--frames", "4"], "--frames must be 1")
    add("generate-frames-not-multiple", GEN + ["--frames", "3"], "--frames must be 1")
    add("generate-size-not-multiple", GEN + ["--size", "6"], "--size must be a positive multiple")
    add("generate-base-window-not-multiple", GEN + ["--base-window", "3"], "--base-window must be 1")
    add("animate-frames-not-multiple", ANIMATE + ["--frames", "3"], "--frames must be 1")
    add("generate-base-stride-over-window", GEN + ["--frames", "12", "--base-window", "4", "--base-stride", "6"],
        "must not exceed the window", early=False)
    # --- devices and precisions (issue 23), before any model loads
    for cmd in ("generate", "upscale", "animate"):
        add(f"{cmd}--device=tpu", COMMANDS[cmd] + ["--device", "tpu"], "unknown device")
        add(f"{cmd}--device=cuda:x", COMMANDS[cmd] + ["--device", "cuda:x"], "unknown device")
        add(f"{cmd}--dtype=fp16-on-cpu", COMMANDS[cmd] + ["--device", "cpu", "--dtype", "fp16"], "CUDA devices only")
        add(f"{cmd}--dtype=fp8", COMMANDS[cmd] + ["--dtype", "fp8"], "invalid choice")
    add("generate--bf16-with-dtype-fp32", GEN + ["--bf16", "--dtype", "fp32"], "disagree")
    if not __import__("torch").cuda.is_available():
        add("generate--device=cuda-without-cuda", GEN + ["--device", "cuda"], "no CUDA device")
    # --- LoRA files given as --image-model
    add("generate--image-model=junk-lora", GEN + ["--image-model", "{D}/junk.safetensors"], "not a LoRA file")
    add("generate-unknown-flag", GEN + ["--colour", "red"], "unrecognized")
    add("generate-frames-word", GEN + ["--frames", "many"], "invalid int")

    # --- model folders: missing, damaged, foreign
    models = {"missing": "does not exist", "no-json": "not a vidiff pipeline", "json-malformed": "not valid JSON",
              "json-list": "JSON object", "json-no-diffusion": "diffusion", "json-bad-task": "unknown task",
              "json-bad-defaults": "defaults", "json-non-utf8": "not valid JSON", "json-bad-guidance-cut": "guidance_min_t"}
    for name, words in models.items():
        add(f"generate-model-{name}", GEN + ["--model", f"{{D}}/models/{name}"], words)
    late = {"no-unet": "no model", "zero-byte-weights": "cannot load", "truncated-weights": "cannot load",
            "foreign-weights": "do not fit", "pickle-weights": "cannot load", "config-malformed": "cannot load",
            "nan-weights": "NaN", "text-encoder-missing": "text encoder", "no-weights": "no diffusion_pytorch_model.safetensors"}
    for name, words in late.items():
        add(f"generate-model-{name}", GEN + ["--model", f"{{D}}/models/{name}"], words, early=False)
    add("generate-with-conditional-model", GEN + ["--model", "{COND}"], "needs a text-to-video")
    add("animate-with-text-to-video-model", ANIMATE + ["--model", "{T2V}"], "needs a conditional")
    add("edit-with-conditional-model", EDIT + ["--model", "{COND}"], "needs a text-to-video")
    add("upscale-with-text-to-video-model", UPSCALE + ["--model", "{T2V}"], "needs a super-resolution")
    add("generate-model-hub-id", GEN + ["--model", "someone/a-video-model"], "fetches nothing from a model hub")
    # --- custom step grids (--timesteps, diffusers' timesteps=)
    for cmd in ("generate", "animate", "edit"):
        add(f"{cmd}--timesteps=words", COMMANDS[cmd] + ["--timesteps", "999,lots"], "takes whole numbers")
        add(f"{cmd}--timesteps=rising", COMMANDS[cmd] + ["--timesteps", "10,500"], "must fall strictly")
    add("generate--timesteps=past-T", GEN + ["--timesteps", "1000,10"], "in [0, 999]")
    add("generate--timesteps=negative", GEN + ["--timesteps", "999,-1"], "in [0, 999]")
    add("generate--timesteps=empty", GEN + ["--timesteps", ""], "takes whole numbers")
    add("generate--timesteps-and-steps", GEN + ["--timesteps", "999,500", "--steps", "3"], "disagree")
    add("generate--timesteps-with-ddim", GEN + ["--timesteps", "999,500", "--sampler", "ddim"],
        "takes no custom timesteps", early=False)
    # --- rescaled guidance and DDIM's eta (diffusers' guidance_rescale=, eta=)
    for cmd in ("generate", "animate", "inpaint", "cinemagraph", "edit"):
        for v in ("-0.1", "1.5", "nan", "inf"):
            add(f"{cmd}--guidance-rescale={v}", COMMANDS[cmd] + ["--guidance-rescale", v], "--guidance-rescale")
            add(f"{cmd}--eta={v}", COMMANDS[cmd] + ["--eta", v, "--sampler", "ddim"], "--eta")
        add(f"{cmd}--eta-without-ddim", COMMANDS[cmd] + ["--eta", "0.5"], "--eta is DDIM's")
    add("generate--eta-with-dpm", GEN + ["--eta", "1", "--sampler", "dpm++-sde"], "the sampler here is dpm++-sde")
    add("generate-style-missing", GEN + ["--style", "{D}/nothing"], "does not exist")
    add("generate-style-of-other-task", GEN + ["--style", "{COND}"], "conditional", early=False)
    add("generate-ssr-missing", GEN + ["--ssr", "{D}/nothing"], "does not exist")

    # --- images (animate input, cinemagraph input and region)
    images = {"missing": "not found", "zero-byte": "cannot read", "corrupt": "cannot read", "truncated": "cannot read",
              "text": "cannot read", "tiny": "at least", "wide": "aspect ratio", "fifo": "not a regular file",
              "folder": "not a regular file"}
    for name, words in images.items():
        path = f"{{D}}/images/{name}.png" if name != "fifo" else "{D}/fifo"
        if name == "folder":
            path = "{D}/images"
        argv = list(ANIMATE)
        argv[1] = path
        add(f"animate-image-{name}", argv, words)
        argv = list(CINEMA)
        argv[4] = path
        add(f"cinemagraph-region-{name}", argv, "must be an image" if name == "folder" else words)
    add("cinemagraph-region-empty", CINEMA[:4] + ["{D}/images/black.png"] + CINEMA[5:], "empty", early=False)
    add("device-as-image", ["animate", "/dev/zero", "a red circle", "--model", "{COND}"], "not a regular file")

    # --- videos (inpaint, edit and upscale input) and masks
    videos = {"missing.mp4": "not found", "zero-byte.mp4": "cannot decode", "corrupt.mp4": "cannot decode",
              "truncated.mp4": "cannot decode", "short.mp4": "has 2 frames", "wide": "aspect ratio",
              "empty-folder": "no frames", "mixed-sizes": "differ in size", "corrupt-frame": "cannot read",
              "fifo.mp4": "not a regular file", "audio-only.mp4": "no video stream"}
    for name, words in videos.items():
        for cmd in ("inpaint", "edit", "upscale"):
            if cmd == "upscale" and name == "short.mp4":
                continue  # upscale takes any length
            argv = list(COMMANDS[cmd])
            argv[1] = f"{{D}}/videos/{name}"
            add(f"{cmd}-video-{name}", argv, words)
    add("upscale-device-input", ["upscale", "/dev/zero", "a red circle", "--model", "{SSR}"], "not a regular file")
    add("upscale-larger-than-output", ["upscale", "{D}/videos/big", "a red circle", "--model", "{SSR}"], "crop it")
    add("inpaint-mask-wrong-aspect", INPAINT[:4] + ["{D}/images/wide.png"] + INPAINT[5:], "aspect ratio")
    add("inpaint-mask-empty", INPAINT[:4] + ["{D}/images/black.png"] + INPAINT[5:], "empty", early=False)
    add("inpaint-mask-and-border", INPAINT + ["--border", "2"], "--mask and --border both give")
    add("inpaint-mask-video-short", INPAINT[:4] + ["{D}/videos/short.mp4"] + INPAINT[5:], "has 2 frames")
    add("inpaint-mask-and-border", INPAINT + ["--border", "2"], "--mask FILE")
    add("inpaint-no-region", INPAINT[:3] + INPAINT[5:], "--mask FILE")
    add("inpaint-border-too-wide", [a for a in INPAINT if a not in ("--mask", "{D}/mask.png")] + ["--border", "9"],
        "border")
    add("edit-input-fps-unstorable", EDIT[:1] + ["{D}/videos/fps-huge.mp4"] + EDIT[2:], "--fps")

    # --- outputs
    outputs = {"unsupported.avi": "unsupported output", "{D}/img.png": "input", "{D}/clip": "input",
               "{D}/existing.mp4": "already exists", "{D}/sidecar.mp4": "sidecar.json", "": "current folder",
               ".": "current folder", "..": "current folder", "/proc/forbidden/a.mp4": "output folder",
               "{D}/img.png/a.mp4": "cannot", "{D}/a\nb.mp4": "control characters", "x" * 300 + ".mp4": "bytes long",
               "{D}/user-folder": "holds other files", "{D}/name\udcff.mp4": "UTF-8",
               # a folder of PNG frames named '-' or '.mp4' was written
               "-": "standard output", "{D}/.mp4": "no name before its extension"}
    for out, words in outputs.items():
        for cmd in ("generate", "animate", "edit"):
            reads = {"{D}/clip": "edit", "{D}/img.png": "animate"}.get(out)
            # an existing file that is not this command's input is refused as existing, not as an input
            add(f"{cmd}-output-{out[-20:]!r}", COMMANDS[cmd] + ["-o", out],
                "already exists" if reads and reads != cmd else words)
    add("animate-sheet-over-input", ["animate", "{D}/frame.png", "a red circle", "--model", "{COND}", "-o",
                                     "{D}/frame.mp4", "--overwrite"], "input")
    add("overwrite-user-folder", GEN + ["-o", "{D}/user-folder", "--overwrite"], "holds other files")
    add("overwrite-file-with-folder", GEN + ["-o", "{D}/existing.mp4", "--overwrite", "--no-sheet"], "folder")
    return cases


CASES = _cases()


def _train_cases() -> list[tuple[str, str, list[str], str]]:
    """(id, recipe text, extra argv, words)."""
    ok = ("model: {preset: stunet-tiny}\ndata: {kind: shapes, num_frames: 4, resolution: 8}\n"
          "train: {steps: 2, batch_size: 1, mixed_precision: 'no'}\ntext_encoder: {TEXT}\noutput_dir: {OUT}/run\n")
    cases = [
        ("empty-yaml", "", [], "is empty"), ("comment-only-yaml", "# nothing\n", [], "is empty"),
        ("malformed-yaml", "train: {steps: 2\n", [], "not valid YAML"), ("list-yaml", "- 1\n- 2\n", [], "mapping"),
        ("non-utf8-yaml", b"train: {steps: \xff}\n", [], "not valid YAML"),
        ("unknown-section", ok + "trian: {steps: 2}\n", [], "unknown section"),
        ("unknown-key", ok.replace("steps: 2", "stepz: 2"), [], "unknown key"),
        ("section-not-mapping", ok.replace("train: {steps: 2, batch_size: 1, mixed_precision: 'no'}", "train: 5"), [],
         "must be a mapping"),
        ("bad-type", ok.replace("steps: 2", "steps: two"), [], "must be of type int"),
        ("set-without-equals", ok, ["--set", "train.steps"], "KEY=VALUE"),
        ("set-unknown-key", ok, ["--set", "train.stepz=3"], "unknown key"),
        ("set-section-scalar", ok, ["--set", "train=5"], "must be a mapping"),
        ("set-bad-yaml", ok, ["--set", "train.steps=[1"], "not valid YAML"),
        ("set-into-scalar", ok, ["--set", "output_dir.x=1"], "not a mapping"),
        ("resume-not-a-checkpoint", ok, ["--resume", "{OUT}"], "not a complete checkpoint"),
        ("init-from-missing", ok.replace("train: {", "train: {init_from: {OUT}/nothing, "), [], "not a vidiff pipeline"),
        ("text-encoder-missing", ok.replace("text_encoder: {TEXT}", "text_encoder: {OUT}/none"), [], "text encoder"),
        ("freeze-both", ok.replace("train: {", "train: {freeze_spatial: true, freeze_temporal: true, "), [],
         "freeze everything"),
        ("image-weight-noise-without-frozen-weights", ok, ["--set", "train.image_weight_noise=0.1"],
         "perturbs the frozen image weights of a temporal-only run"),
        ("image-weight-noise-negative", ok, ["--set", "train.image_weight_noise=-0.1"],
         "train.image_weight_noise must be in [0.0, 1.0]"),
        ("image-weight-noise-not-a-number", ok, ["--set", "train.image_weight_noise=lots"], "must be of type float"),
        ("super-resolution-without-pairs", "task: super-resolution\n" + ok, [], "data.lowres"),
        ("lowres-above-resolution", ok.replace("resolution: 8", "resolution: 8, lowres: 16"), [], "data.lowres"),
        ("unknown-task", "task: painting\n" + ok, [], "unknown task"),
        ("mixed-precision-fp16", ok.replace("'no'", "fp16"), [], "mixed_precision"),
        ("mixed-precision-yaml-no", ok.replace("'no'", "no"), [], "YAML reads no"),
        ("batch-not-dividing-over-accumulation", ok, ["--set", "train.gradient_accumulation_steps=2"], "does not divide"),
        ("random-start-on-shapes", ok, ["--set", "data.random_start=true"], "data.random_start"),
        ("lora-of-a-video-model", ok, ["--set", "train.lora_rank=4"], "LoRA of a text-to-image model"),
        ("motion-weights-unknown-motion", ok.replace("data: {kind: shapes", "data: {kind: shapes, motion_weights: "
                                                     "{flying: 2}"), [], "unknown motion"),
        ("motion-weights-negative", ok.replace("data: {kind: shapes", "data: {kind: shapes, motion_weights: "
                                               "{circling: -2}"), [], "data.motion_weights"),
        ("motion-weights-not-a-mapping", ok, ["--set", "data.motion_weights=3"], "data.motion_weights must be"),
        ("temporal-downsample-coarsest-level", ok, ["--set", "model.temporal_downsample_levels=[1]"],
         "temporal_downsample_levels must be distinct levels from 0 to 0"),
        # the U-Net's own arguments, before anything loads (a level it does not have was dropped without a word)
        ("model-channels-empty", ok, ["--set", "model.channels=[]"], "model.channels must be a non-empty list"),
        ("model-heads-zero", ok, ["--set", "model.heads=0"], "model.heads must be a whole number"),
        ("model-heads-not-dividing", ok, ["--set", "model.heads=3"], "must divide every width"),
        ("model-patch-size-zero", ok, ["--set", "model.patch_size=0"], "model.patch_size must be"),
        ("model-layers-zero", ok, ["--set", "model.layers_per_level=0"], "model.layers_per_level must be"),
        ("model-dropout-one-and-a-half", ok, ["--set", "model.dropout=1.5"], "model.dropout must be a probability"),
        ("model-cross-attention-missing-level", ok, ["--set", "model.cross_attention_levels=[2]"],
         "model.cross_attention_levels must be a list of distinct levels from 0 to 1"),
        ("model-spacetime-attention-coarsest", ok, ["--set", "model.spacetime_attention_levels=[1]"],
         "the coarsest has its own"),
        ("model-temporal-attention-twice", ok, ["--set", "model.temporal_attention_levels=[0, 0]"],
         "model.temporal_attention_levels must be a list of distinct levels"),
        ("model-self-condition-not-a-flag", ok, ["--set", "model.self_condition=2"],
         "model.self_condition must be true or false"),
        # clips the model cannot take: found once it is built, before the run folder is touched
        ("clip-frames-not-fitting", ok, ["--set", "data.num_frames=3"], "do not fit the model: num_frames"),
        ("clip-size-not-fitting", ok, ["--set", "data.resolution=6"], "do not fit the model: height and width"),
        ("noise-prior-unknown", ok, ["--set", "diffusion.noise_prior=pyoco"], "diffusion.noise_prior must be one of"),
        ("noise-prior-alpha-alone", ok, ["--set", "diffusion.noise_prior_alpha=1"], "without diffusion.noise_prior"),
        ("noise-prior-alpha-negative", ok, ["--set", "diffusion.noise_prior=mixed", "--set",
                                            "diffusion.noise_prior_alpha=-1"], "diffusion.noise_prior_alpha must be"),
        ("noise-prior-alpha-nan", ok, ["--set", "diffusion.noise_prior=progressive", "--set",
                                       "diffusion.noise_prior_alpha=.nan"], "diffusion.noise_prior_alpha must be"),
    ]
    ranges = {"train.steps": ["0", "-5"], "train.batch_size": ["0"], "train.lr": ["0", "-1e-4", ".nan", ".inf", "5"],
              "train.grad_clip": ["-1", ".nan"], "train.ema_decay": ["1.5", "-0.1"], "train.caption_dropout": ["2"],
              "train.checkpoint_every": ["0"], "train.keep_checkpoints": ["-1"], "train.seed": ["-1"],
              "train.warmup_steps": ["-1"], "train.max_nonfinite": ["0"], "train.threads": ["-2"],
              "train.weight_decay": ["-1"], "train.min_lr_ratio": ["2"], "train.lowres_noise": ["-1"],
              "train.timestep_shift": ["0", "-1", "1000", ".nan"], "train.lr_schedule": ["linear"], "data.num_frames": ["0"],
              "data.fps": ["0", ".inf"], "data.resolution": ["0", "-32"], "data.two_object_prob": ["1.5"],
              "data.image_prob": ["-0.5"], "data.frame_stride": ["0"], "data.kind": ["videos"],
              "data.style": ["sketch"], "data.crop_size": ["-1"], "data.window_frames": ["-1"],
              "diffusion.num_train_timesteps": ["0"], "diffusion.prediction_type": ["noise"],
              "diffusion.beta_schedule": ["cosine"], "diffusion.min_snr_gamma": ["-5"],
              "train.gradient_accumulation_steps": ["0", "-1"], "train.num_workers": ["-1"],
              "train.log_with": ["csv"], "train.checkpoint_format": ["sharded"], "train.lora_rank": ["-1"],
              "data.frame_stride_max": ["-1"], "train.timestep_min": ["-1", "5000"], "train.timestep_max": ["-3", "5000"],
              "train.temporal_diff_weight": ["-1", "nan"],
              # the sampling defaults the trained folder records (a bad one made a folder that refused to load,
              # after the whole run; a misspelt key was recorded and never read)
              "sample.guidance_scale": ["-1", ".nan"], "sample.num_inference_steps": ["0", "2.5"],
              "sample.sampler": ["euler"], "sample.guidance_min_t": ["5000"], "sample.logsnr_min": ["low"],
              "sample.guidance_rescale": ["2"], "sample.eta": ["-1"], "sample.window_weighting": ["box"],
              "sample.guidanc_scale": ["3"]}
    for key, values in ranges.items():
        for v in values:
            cases.append((f"{key}={v}", ok, ["--set", f"{key}={v}"], key))
    manifests = {"missing": "not found", "fifo-row": "not a regular file", "device-row": "not a regular file",
                 "no-caption": "lacks", "null-caption": "lacks", "empty-caption": "empty",
                 "control-caption": "control", "number-caption": "must be strings", "bad-json": "not valid JSON",
                 "no-rows": "lists no videos", "wrong-suffix": "must be .csv or .jsonl", "non-utf8": "not UTF-8",
                 "manifest-is-fifo": "not a regular file",
                 # an internal error after the run folder was made / 'lists no videos' before
                 "all-missing": "gives a clip", "all-unreadable": "gives a clip"}
    for name, words in manifests.items():
        recipe = ok.replace("data: {kind: shapes", "data: {kind: folder, manifest: '{D}/manifests/" + name +
                            (".csv" if name in ("wrong-suffix",) else ".txt" if name == "wrong-suffix" else ".jsonl")
                            + "'")
        if name == "wrong-suffix":
            recipe = ok.replace("data: {kind: shapes", "data: {kind: folder, manifest: '{D}/manifests/list.txt'")
        cases.append((f"manifest-{name}", recipe, [], words))
    cases.append(("config-is-a-folder", ok, ["--config", "{D}/user-folder"], "is a folder"))  # said "not found"
    # found once the model was built, as "cannot read or write ...: File exists"
    cases.append(("output-dir-is-a-file", ok.replace("{OUT}/run", "{D}/existing.mp4"), [], "is a file"))
    cases.append(("output-dir-under-a-file", ok.replace("{OUT}/run", "{D}/existing.mp4/run"), [], "is a file"))
    cases.append(("manifest-unset", ok.replace("kind: shapes", "kind: folder"), [], "data.manifest"))
    cases.append(("manifest-csv-without-header", ok.replace("data: {kind: shapes", "data: {kind: folder, manifest: "
                                                           "'{D}/manifests/no-header.csv'"), [], "'path,caption'"))
    return cases


TRAIN_CASES = _train_cases()

EVALUATE_CASES = [
    ("nothing", [], "give --model"), ("real-without-fake", ["--real", "{D}/eval/real"], "go together"),
    ("model-and-folders", ["--model", "{T2V}", "--real", "{D}/eval/real", "--fake", "{D}/eval/real"], "not both"),
    ("unknown-suite", ["--model", "{T2V}", "--suite", "shapes-train"], "unknown suite"),
    ("missing-model", ["--model", "{D}/nothing"], "does not exist"),
    ("samples-0", ["--model", "{T2V}", "--samples", "0"], "--samples"),
    ("samples-1", ["--model", "{T2V}", "--samples", "1"], "--samples"),
    ("steps-0", ["--model", "{T2V}", "--steps", "0"], "--steps"),
    ("sweep-steps-negative", ["--model", "{T2V}", "--sweep-steps", "-5"], "--sweep-steps"),
    # FVD of one clip a side: it failed after the whole evaluation had run
    ("sweep-samples-one", ["--model", "{T2V}", "--sweep-samples", "1"], "--sweep-samples must be in [2,"),
    ("real-missing", ["--real", "{D}/nothing", "--fake", "{D}/eval/real"], "not a folder"),
    ("fake-empty", ["--real", "{D}/eval/real", "--fake", "{D}/eval/empty"], "no videos"),
    ("all-unreadable", ["--real", "{D}/eval/real", "--fake", "{D}/eval/broken"], "fewer than 2 readable"),
    # each mode's options in the other mode (they were ignored without a word)
    ("frames-with-model", ["--model", "{T2V}", "--frames", "8"], "--frames applies to --real/--fake"),
    ("captions-with-model", ["--model", "{T2V}", "--captions", "{D}/eval/other-captions.csv"],
     "--captions applies to --real/--fake"),
    ("steps-with-folders", ["--real", "{D}/eval/real", "--fake", "{D}/eval/real", "--steps", "3"],
     "--steps applies to --model"),
    ("seed-and-sweep-with-folders", ["--real", "{D}/eval/real", "--fake", "{D}/eval/real", "--seed", "1",
                                     "--sweep-steps", "5"], "--seed, --sweep-steps apply to --model"),
    ("device-with-folders", ["--real", "{D}/eval/real", "--fake", "{D}/eval/real", "--device", "cpu"],
     "--device applies to --model"),
    ("report-folder-is-users", ["--model", "{T2V}", "-o", "{D}/user-folder"], "not empty"),
    ("report-folder-overwrite-users", ["--model", "{T2V}", "-o", "{D}/user-folder", "--overwrite"], "other files"),
    ("report-folder-is-a-file", ["--model", "{T2V}", "-o", "{D}/existing.mp4"], "is a file"),
    ("frames-0", ["--real", "{D}/eval/real", "--fake", "{D}/eval/real", "--frames", "0"], "frames"),
    ("video-features-bogus", ["--real", "{D}/eval/real", "--fake", "{D}/eval/real", "--video-features", "magic"],
     "video"),
    # a text file as I3D weights ended in an IndexError from deep in torch's unpickler
    ("video-features-i3d-text", ["--real", "{D}/eval/real", "--fake", "{D}/eval/real", "--video-features",
                                 "i3d:{D}/user-folder/thesis.tex"], "neither a TorchScript file nor an I3D state dict"),
    ("classifier-i3d-random-bytes", ["--real", "{D}/eval/real", "--fake", "{D}/eval/real", "--classifier",
                                     "i3d:{D}/junk.safetensors"], "neither a TorchScript file nor an I3D state dict"),
    # CLIPSIM and the Shapes scores were left out without a word
    ("captions-naming-no-video", ["--real", "{D}/eval/real", "--fake", "{D}/eval/real", "--captions",
                                  "{D}/eval/other-captions.csv"], "names none of the 3 generated videos"),
]


# ---------------------------------------------------------------------------------------------- fixtures
def _clip(t=6, h=8, w=8, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (t, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_pipeline_dir, tiny_conditional_dir, tiny_ssr_dir, tiny_text_encoder, tiny_text_dir):
    """Every bad file the corpus names, made once."""
    import json

    import torch
    from safetensors.torch import save_file

    from conftest import make_tiny_pipeline
    from vidiff.io.video import write_video

    d = tmp_path_factory.mktemp("corpus")
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(d / "img.png")
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(d / "frame.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    Image.fromarray(mask).save(d / "mask.png")
    write_video(_clip(), d / "clip")
    (d / "existing.mp4").write_bytes(b"user's video")
    (d / "junk.safetensors").write_bytes(os.urandom(64))  # not a LoRA
    (d / "sidecar.json").write_text("user's notes")
    (d / "user-folder").mkdir()
    (d / "user-folder" / "thesis.tex").write_text("years of work")
    os.mkfifo(d / "fifo")

    im = d / "images"
    im.mkdir()
    good = (d / "img.png").read_bytes()
    (im / "zero-byte.png").write_bytes(b"")
    (im / "corrupt.png").write_bytes(os.urandom(300))
    (im / "truncated.png").write_bytes(good[: len(good) // 2])
    (im / "text.png").write_text("not an image")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(im / "tiny.png")
    Image.fromarray(np.zeros((8, 32, 3), np.uint8)).save(im / "wide.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(im / "black.png")

    vd = d / "videos"
    vd.mkdir()
    write_video(_clip(), vd / "good.mp4", view_size=8)
    data = (vd / "good.mp4").read_bytes()
    (vd / "zero-byte.mp4").write_bytes(b"")
    (vd / "corrupt.mp4").write_bytes(os.urandom(2000))
    (vd / "truncated.mp4").write_bytes(data[: len(data) // 3])
    write_video(_clip(2), vd / "short.mp4", view_size=8)
    write_video(_clip(6, 8, 32), vd / "wide")
    write_video(_clip(6, 64, 64), vd / "big")
    import av

    with av.open(str(vd / "audio-only.mp4"), "w") as c:  # was 'cannot decode video ...: IndexError'
        s = c.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for pkt in [*s.encode(frame), *s.encode()]:
            c.mux(pkt)
    # a stream at 5,000 fps: more than an output can store
    with av.open(str(vd / "fps-huge.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=5000)
        s.width, s.height, s.pix_fmt = 8, 8, "yuv420p"
        for f in _clip():
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    (vd / "empty-folder").mkdir()
    write_video(_clip(), vd / "mixed-sizes")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(vd / "mixed-sizes" / "frame_0003.png")
    write_video(_clip(), vd / "corrupt-frame")
    (vd / "corrupt-frame" / "frame_0002.png").write_bytes(b"garbage")
    os.mkfifo(vd / "fifo.mp4")

    md = d / "models"
    md.mkdir()
    for name in ("no-json", "json-malformed", "json-list", "json-no-diffusion", "json-bad-task", "json-bad-defaults",
                 "json-non-utf8", "json-bad-guidance-cut"):
        shutil.copytree(tiny_pipeline_dir, md / name)
    (md / "no-json" / "vidiff_pipeline.json").unlink()
    (md / "json-malformed" / "vidiff_pipeline.json").write_text("{")
    (md / "json-list" / "vidiff_pipeline.json").write_text("[1, 2]")
    meta = json.loads((tiny_pipeline_dir / "vidiff_pipeline.json").read_text())
    (md / "json-no-diffusion" / "vidiff_pipeline.json").write_text(json.dumps({**meta, "diffusion": None}))
    (md / "json-bad-task" / "vidiff_pipeline.json").write_text(json.dumps({**meta, "task": "painting"}))
    (md / "json-bad-defaults" / "vidiff_pipeline.json").write_text(json.dumps({**meta, "defaults": {"height": -8}}))
    (md / "json-non-utf8" / "vidiff_pipeline.json").write_bytes(b"\xff\xfe{")
    (md / "json-bad-guidance-cut" / "vidiff_pipeline.json").write_text(
        json.dumps({**meta, "defaults": {**meta["defaults"], "guidance_min_t": -5}}))
    weights = next((tiny_pipeline_dir / "unet").glob("*.safetensors"))
    for name in ("no-unet", "zero-byte-weights", "truncated-weights", "foreign-weights", "pickle-weights",
                 "config-malformed", "nan-weights", "text-encoder-missing", "no-weights"):
        shutil.copytree(tiny_pipeline_dir, md / name)
    w = lambda name: md / name / "unet" / weights.name  # noqa: E731
    shutil.rmtree(md / "no-unet" / "unet")
    w("zero-byte-weights").write_bytes(b"")
    w("truncated-weights").write_bytes(weights.read_bytes()[:200])
    save_file({"something.else": torch.zeros(3)}, str(w("foreign-weights")))
    torch.save({"a": torch.zeros(2)}, w("pickle-weights"))
    (md / "config-malformed" / "unet" / "config.json").write_text("{ channels: [")
    from safetensors.torch import load_file
    state = load_file(str(weights))
    state[next(iter(state))] = state[next(iter(state))] * float("nan")
    save_file(state, str(w("nan-weights")))
    (md / "text-encoder-missing" / "vidiff_pipeline.json").write_text(
        json.dumps({**meta, "text_encoder": str(d / "no-such-encoder")}))
    w("no-weights").unlink()
    make_tiny_pipeline(md / "three-level", tiny_text_encoder, channels=(8, 8, 8))

    mf = d / "manifests"
    mf.mkdir()
    write_video(_clip(), mf / "a.mp4", view_size=8)
    rows = {"fifo-row": [{"path": "../fifo", "caption": "a red circle"}],
            "device-row": [{"path": "/dev/zero", "caption": "a red circle"}],
            "no-caption": [{"path": "a.mp4"}], "null-caption": [{"path": "a.mp4", "caption": None}],
            "empty-caption": [{"path": "a.mp4", "caption": " "}],
            "control-caption": [{"path": "a.mp4", "caption": "a red\x1bcircle"}],
            "number-caption": [{"path": "a.mp4", "caption": 5}], "no-rows": [],
            "all-missing": [{"path": "nothere.mp4", "caption": "a red circle"}],
            "all-unreadable": [{"path": "list.txt", "caption": "a red circle"}]}
    for name, rs in rows.items():
        (mf / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    (mf / "bad-json.jsonl").write_text('{"path": "a.mp4", "caption": \n')
    (mf / "list.txt").write_text("a.mp4 a red circle\n")
    (mf / "no-header.csv").write_text("a.mp4,a red circle\n")
    (mf / "non-utf8.jsonl").write_bytes(b'{"path": "a.mp4", "caption": "\xff"}\n')
    os.mkfifo(mf / "manifest-is-fifo.jsonl")

    ev = d / "eval"
    for name in ("real", "empty", "broken"):
        (ev / name).mkdir(parents=True)
    for i in range(3):
        write_video(_clip(16, 8, 8, seed=i), ev / "real" / f"{i}.mp4", view_size=8)
        (ev / "broken" / f"{i}.mp4").write_bytes(os.urandom(500))
    (ev / "other-captions.csv").write_text("path,caption\nclip-a.mp4,a red circle moving left\n")
    three_level = md / "three-level"
    return {"{D}": str(d), "{T2V}": str(tiny_pipeline_dir), "{COND}": str(tiny_conditional_dir),
            "{SSR}": str(tiny_ssr_dir), "{T2V3}": str(three_level), "{TEXT}": str(tiny_text_dir)}


@pytest.fixture
def model_loads(monkeypatch):
    """Counts model loads (U-Net weights, text encoders, training models)."""
    import vidiff.conditioning.text as text
    import vidiff.pipelines.base as base
    import vidiff.training.trainer as trainer

    calls = []
    for mod, name in ((base, "load_unet"), (trainer, "build_model"), (text.TextEncoder, "__init__")):
        real = getattr(mod, name)

        def counted(*a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(*a, **k)

        monkeypatch.setattr(mod, name, counted)
    return calls


def _fill(argv, subs):
    out = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        out.append(a)
    return out


def _snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _check(capsys, argv, words, early, model_loads, watch):
    before = {f: _snapshot(f) for f in watch}
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err[-2000:])
    assert len(lines) == 1 and "Traceback" not in err, err
    if words:
        assert words in lines[0], (words, lines[0])
    if early:
        assert not model_loads, (f"a model loaded before the check: {model_loads}", lines[0])
    for f, snap in before.items():
        assert _snapshot(f) == snap, f"{f} changed"


@pytest.mark.parametrize("name,argv,words,early", CASES, ids=[c[0] for c in CASES])
def test_every_bad_input_is_one_line_and_exit_2(name, argv, words, early, corpus, capsys, model_loads, tmp_path,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = _fill(argv, corpus)
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out.mp4")]
    if name == "overwrite-file-with-folder":  # a folder of frames named like a file: not replaced by a file
        words = "folder"
        (tmp_path / "dir.mp4").mkdir()
        (tmp_path / "dir.mp4" / "frame_0000.png").write_bytes(b"")
        argv[argv.index("-o") + 1] = str(tmp_path / "dir.mp4")
    from pathlib import Path

    extra = ["-q"] if argv[0] == "upscale" or "--steps" in argv else ["-q", "--steps", "2"]
    _check(capsys, argv + extra, words, early, model_loads, [tmp_path, Path(corpus["{D}"])])


@pytest.mark.parametrize("name,recipe,extra,words", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_every_bad_recipe_is_one_line_and_exit_2(name, recipe, extra, words, corpus, capsys, model_loads, tmp_path):
    subs = {**corpus, "{OUT}": str(tmp_path)}
    path = tmp_path / "recipe.yaml"
    if isinstance(recipe, bytes):
        path.write_bytes(recipe)
    else:
        path.write_text(_fill([recipe], subs)[0])
    early = name not in ("init-from-missing", "text-encoder-missing", "clip-frames-not-fitting", "clip-size-not-fitting")
    _check(capsys, ["train", "--config", str(path), *_fill(extra, subs), "-q"], words, early, model_loads, [tmp_path])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name,extra,words", EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_every_bad_evaluation_is_one_line_and_exit_2(name, extra, words, corpus, capsys, model_loads, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["evaluate", *_fill(extra, corpus), "-q"]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "report")]
    late = ("all-unreadable", "video-features-bogus", "video-features-i3d-text", "classifier-i3d-random-bytes")
    _check(capsys, argv, words, name not in late, model_loads, [tmp_path])


def test_corpus_size():
    """The reliability figure quoted in the docs counts these cases."""
    total = len(CASES) + len(TRAIN_CASES) + len(EVALUATE_CASES)
    assert total >= 381, total
