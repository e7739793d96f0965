"""The library does what the CLI does: the same clip bit for bit from the same arguments, and diffusers'
conventions (output_type, a swappable scheduler, torch_dtype, .to(), callback_on_step_end, export_to_video)."""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidiff.cli import main
from vidiff.pipelines.text_to_video import TextToVideoPipeline


def png_frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f)) for f in sorted(folder.glob("frame_*.png"))])


@pytest.fixture(scope="module")
def cascade_conditional_dir(tmp_path_factory, tiny_text_encoder, tiny_ssr_dir):
    from conftest import make_tiny_pipeline

    root = tmp_path_factory.mktemp("condcascade")
    return make_tiny_pipeline(root / "cond", tiny_text_encoder, task="conditional", cond_channels=4, seed=1,
                              extra={"super_resolution": os.path.relpath(tiny_ssr_dir, root / "cond")})


def test_generate_equals_the_library_bit_for_bit_with_super_resolution(tmp_path, tiny_cascade_dir):
    out = tmp_path / "clip"
    assert main(["generate", "a red circle moving left", "--model", str(tiny_cascade_dir), "--seed", "5",
                 "-o", str(out), "-q"]) == 0
    pipe = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)
    video = pipe("a red circle moving left", generator=torch.Generator().manual_seed(5))
    assert video.videos.shape[-1] == 16  # the SSR stage ran (8 -> 16 px)
    assert np.array_equal(png_frames(out), video.to_uint8()[0])
    side = json.loads((tmp_path / "clip.json").read_text())
    for k, v in video.settings.items():  # the sidecar holds the library's resolved settings
        assert side[k] == v, k
    assert side["super_resolution"]["num_inference_steps"] == 3 and side["sampler"] == "dpm++"
    base = pipe("a red circle moving left", generator=torch.Generator().manual_seed(5), base_only=True)
    assert base.videos.shape[-1] == 8 and "super_resolution" not in base.settings
    assert TextToVideoPipeline.from_pretrained(tiny_cascade_dir, base_only=True).super_resolution is None


def test_every_command_equals_its_library_call(tmp_path, cascade_conditional_dir, tiny_cascade_dir, tiny_ssr_dir):
    from vidiff.io.video import write_video
    from vidiff.pipelines.conditional import CinemagraphPipeline, ImageToVideoPipeline, VideoInpaintPipeline
    from vidiff.pipelines.edit import VideoEditPipeline
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    g = torch.Generator().manual_seed(0)
    clip = (torch.rand(1, 3, 4, 8, 8, generator=g) * 255).round() / 255
    write_video((clip[0].permute(1, 2, 3, 0) * 255).round().byte().numpy(), tmp_path / "in")
    Image.fromarray((clip[0, :, 0].permute(1, 2, 0) * 255).round().byte().numpy()).save(tmp_path / "img.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    region = torch.from_numpy(mask >= 128).float()[None, None]
    image = clip[:, :, 0]
    cond = str(cascade_conditional_dir)
    cases = [
        (["animate", str(tmp_path / "img.png"), "a red circle", "--model", cond],
         lambda: ImageToVideoPipeline.from_pretrained(cond)("a red circle", image, generator=gen())),
        (["cinemagraph", str(tmp_path / "img.png"), "a red circle", "--region", str(tmp_path / "mask.png"),
          "--model", cond],
         lambda: CinemagraphPipeline.from_pretrained(cond)("a red circle", image, region, generator=gen())),
        (["inpaint", str(tmp_path / "in"), "a red circle", "--mask", str(tmp_path / "mask.png"), "--model", cond],
         lambda: VideoInpaintPipeline.from_pretrained(cond)("a red circle", clip, region, generator=gen())),
        (["edit", str(tmp_path / "in"), "a blue square", "--model", str(tiny_cascade_dir), "--strength", "0.5",
          "--steps", "6"],  # 6: the folder's 3 steps leave none above t = 0 at this strength (a refused no-op edit)
         lambda: VideoEditPipeline.from_pretrained(tiny_cascade_dir)("a blue square", clip, strength=0.5,
                                                                     num_inference_steps=6, generator=gen())),
        (["upscale", str(tmp_path / "in"), "a red circle", "--model", str(tiny_ssr_dir)],
         lambda: SuperResolutionPipeline.from_pretrained(tiny_ssr_dir)("a red circle", clip, generator=gen())),
    ]

    def gen():
        return torch.Generator().manual_seed(3)

    for i, (argv, call) in enumerate(cases):
        out = tmp_path / f"out{i}"
        assert main(argv + ["--seed", "3", "-o", str(out), "-q"]) == 0, argv
        want = call().to_uint8()[0]
        assert want.shape[1] == 16, argv  # conditional commands run the named SSR stage too
        assert np.array_equal(png_frames(out), want), argv[0]


def test_output_types_and_export_to_video(tmp_path, tiny_pipeline_dir):
    from diffusers.utils import export_to_video

    from vidiff.io.video import read_video

    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    frames = {t: pipe("a red circle", generator=torch.Generator().manual_seed(0), output_type=t).frames
              for t in ("np", "pt", "pil")}
    assert frames["np"].dtype == np.float32 and frames["np"].shape == (1, 4, 8, 8, 3)
    assert 0 <= frames["np"].min() and frames["np"].max() <= 1 and frames["np"].mean() > 0.1
    assert frames["pt"].shape == (1, 4, 3, 8, 8) and torch.allclose(frames["pt"].permute(0, 1, 3, 4, 2),
                                                                      torch.from_numpy(frames["np"]))
    assert len(frames["pil"][0]) == 4 and frames["pil"][0][0].size == (8, 8)
    with pytest.raises(ValueError, match="output_type"):
        pipe("a red circle", output_type="latent")
    # diffusers' writer takes the float frames as they are; the old uint8 frames came out near black
    big = np.repeat(np.repeat(frames["np"][0], 8, 1), 8, 2)  # 64 px: H.264 needs more than 8
    path = export_to_video(list(big), str(tmp_path / "d.mp4"), fps=8)
    back, _ = read_video(path)
    assert len(back) == 4 and abs(back.mean() / 255 - big.mean()) < 0.03


@pytest.mark.parametrize("kwargs,words", [
    ({"prompt": None}, "give a prompt .* or prompt_embeds"),
    ({"prompt": 5}, "prompt must be a string or a list of strings, got int"),
    ({"generator": 3}, "generator must be a torch.Generator"),
    ({"generator": [3]}, "generator must be a torch.Generator .*, a list of one per video"),
    ({"generator": [torch.Generator(), torch.Generator()]}, "a list of 2 generators for 1 video: give one per video"),
    ({"negative_prompt": ["a", "b"]}, "negative_prompt is a list of 2 for 1 caption: give one per caption"),
    ({"negative_prompt": 5}, "negative_prompt must be a string, a list of one per caption, or None, got int"),
    # the CLI refused a control character in the negative prompt; the library encoded it as it came
    ({"negative_prompt": "a \x07 bell"}, "the negative prompt contains control or unassigned characters"),
    ({"negative_prompt": "   "}, "the negative prompt is empty"),
    ({"latents": torch.zeros(1, 3, 2, 2, 2)}, r"latents must be a tensor of shape \(1, 3, 4, 8, 8\)"),
    ({"latents": "noise"}, "latents must be a tensor"),
    ({"callback_on_step_end": 5}, "callback_on_step_end must be callable"),
    # NaN noise ran through the base model and was reported by the super-resolution stage as a bad "low-resolution
    # video"; integer noise was taken; a callback's return that is not the dict was ignored
    ({"latents": torch.full((1, 3, 4, 8, 8), float("nan"))}, "latents hold NaN or infinite values"),
    ({"latents": torch.zeros((1, 3, 4, 8, 8), dtype=torch.int64)}, "latents must be a floating-point tensor"),
    ({"callback_on_step_end": lambda *a: 5}, "must return a dict .* or None, got int"),
    ({"callback_on_step_end": lambda p, i, t, kw: {"latents": kw["latents"][:, :1]}},
     r"'latents' callback_on_step_end returned must be a float tensor of shape \(1, 3, 4, 8, 8\), got \(1, 1, 4"),
    # sizes and steps were passed through int() and guidance through float(): 2.5 steps ran 2, True frames ran 1
    ({"num_inference_steps": 2.5}, "num_inference_steps must be an integer, got 2.5"),
    ({"num_frames": True}, "num_frames must be an integer, got True"),
    ({"height": "8"}, "height must be an integer, got '8'"),
    ({"guidance_scale": "3"}, "guidance_scale must be a number, got '3'"),
    # the library had no upper bound: 10^9 frames or a 10^6-pixel side was torch's allocation error
    ({"num_frames": 10**9}, r"num_frames must be in \[1, 1024\], got 1000000000"),
    ({"height": 10**6, "width": 8}, r"height must be in \[1, 8192\]"),
    ({"guidance_scale": float("nan")}, "guidance_scale must be a finite number"),
    ({"num_videos_per_prompt": 0}, r"num_videos_per_prompt must be in \[1, 4096\], got 0"),
    ({"num_videos_per_prompt": True}, "num_videos_per_prompt must be an integer, got True"),
    ({"return_dict": "no"}, "return_dict must be True or False, got 'no'"),
    ({"base_only": "no"}, "base_only must be True or False, got 'no'"),  # read as true: the stage skipped, unsaid
    ({"num_videos_per_prompt": 2, "generator": [torch.Generator()] * 3}, "a list of 3 generators for 2 videos"),
])
def test_bad_call_arguments_are_value_errors(tiny_pipeline_dir, kwargs, words):
    # diffusers' own pipelines raise ValueError for these; a TypeError or RuntimeError from deep in torch is not a
    # message a user can act on
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    kwargs = {"prompt": "a red circle", "num_inference_steps": 2, **kwargs}
    with pytest.raises(ValueError, match=words):
        pipe(kwargs.pop("prompt"), **kwargs)


def test_a_list_of_generators_and_negative_prompts_gives_each_video_its_own(tiny_cascade_dir):
    # diffusers' convention: generator=[g0, g1] makes video i the video a single call with g_i makes, through the
    # SDE sampler's noise and the super-resolution stage; a list of negative prompts, one per caption; None is "".
    # Until 2026-12-02 the library refused both lists and a None negative prompt
    pipe = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)
    caps, negs, seeds = ["a red circle moving left", "a blue square moving up"], ["a green circle", ""], (3, 4)

    def gen(s):
        return torch.Generator().manual_seed(s)

    kw = {"sampler": "dpm++-sde", "num_inference_steps": 4}
    both = pipe(caps, generator=[gen(s) for s in seeds], negative_prompt=negs, **kw)
    assert both.videos.shape[-1] == 16  # the SSR stage ran
    for i, (c, n, s) in enumerate(zip(caps, negs, seeds)):
        one = pipe(c, generator=gen(s), negative_prompt=n, **kw).videos[0]
        assert torch.allclose(both.videos[i], one, atol=1e-4), i
    assert both.settings["negative_prompt"] == negs
    # one generator draws the batch's noise from one stream, as it always has: not the same as the list
    assert not torch.allclose(pipe(caps, generator=gen(3), negative_prompt=negs, **kw).videos[1], both.videos[1],
                              atol=1e-2)
    # a list of one generator is the generator itself (diffusers' randn_tensor), and None the empty negative prompt
    a = pipe(caps[0], generator=[gen(5)], negative_prompt=None, base_only=True, **kw)
    b = pipe(caps[0], generator=gen(5), negative_prompt="", base_only=True, **kw)
    assert torch.equal(a.videos, b.videos) and a.settings["negative_prompt"] == ""


def test_num_videos_per_prompt_and_return_dict_as_in_diffusers(tiny_cascade_dir, tiny_conditional_dir,
                                                               tiny_pipeline_dir):
    # diffusers' pipelines take num_videos_per_prompt (videos i*n .. i*n+n-1 are caption i's) and return_dict=False
    # (the tuple (frames,)); both were a TypeError here
    pipe = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)
    caps, negs = ["a red circle moving left", "a blue square moving up"], ["a green circle", ""]
    gens = [torch.Generator().manual_seed(s) for s in range(4)]
    kw = {"num_inference_steps": 3, "base_only": True}
    out = pipe(caps, num_videos_per_prompt=2, negative_prompt=negs, generator=gens, **kw)
    assert out.videos.shape[0] == 4 and out.prompts == [caps[0], caps[0], caps[1], caps[1]]
    assert out.settings["negative_prompt"] == [negs[0], negs[0], negs[1], negs[1]]
    for i in range(4):  # each video is the single call of its caption, negative prompt and generator
        one = pipe(caps[i // 2], negative_prompt=negs[i // 2], generator=torch.Generator().manual_seed(i), **kw)
        assert torch.allclose(out.videos[i], one.videos[0], atol=1e-4), i
    assert not torch.allclose(out.videos[0], out.videos[1], atol=1e-3)  # two videos of one caption differ
    frames = pipe(caps[0], generator=torch.Generator().manual_seed(0), return_dict=False, **kw)
    assert isinstance(frames, tuple) and len(frames) == 1
    assert np.array_equal(frames[0], pipe(caps[0], generator=torch.Generator().manual_seed(0), **kw).frames)

    from vidiff.pipelines.conditional import ImageToVideoPipeline
    from vidiff.pipelines.edit import VideoEditPipeline

    clip = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    for other, call in ((ImageToVideoPipeline.from_pretrained(tiny_conditional_dir),
                         lambda p, **k: p("a red circle", clip[:, :, 0], num_inference_steps=2, **k)),
                        (VideoEditPipeline.from_pretrained(tiny_pipeline_dir),
                         lambda p, **k: p("a red circle", clip, strength=0.8, num_inference_steps=4, **k))):
        got = call(other, generator=torch.Generator().manual_seed(1), return_dict=False)
        assert np.array_equal(got[0], call(other, generator=torch.Generator().manual_seed(1)).frames)
        with pytest.raises(ValueError, match="return_dict must be True or False"):
            call(other, return_dict=1)
        # n videos of each given input (a TypeError before): video j is the single call with generator j
        many = call(other, num_videos_per_prompt=3, generator=[torch.Generator().manual_seed(s) for s in range(3)])
        assert many.videos.shape[0] == 3 and many.prompts == ["a red circle"] * 3
        for j in range(3):
            assert torch.allclose(many.videos[j], call(other, generator=torch.Generator().manual_seed(j)).videos[0],
                                  atol=1e-4), j
        assert not torch.allclose(many.videos[0], many.videos[1], atol=1e-3)
        with pytest.raises(ValueError, match="num_videos_per_prompt must be in"):
            call(other, num_videos_per_prompt=0)
    # a batch of two inputs, two videos each: videos 2i, 2i+1 are input i's, with its caption and mask
    from vidiff.pipelines.conditional import VideoInpaintPipeline

    inpaint = VideoInpaintPipeline.from_pretrained(tiny_conditional_dir)
    clips, masks = torch.rand(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(2)), torch.zeros(2, 1, 8, 8)
    masks[0, :, :4], masks[1, :, 4:] = 1, 1
    caps = ["a red circle", "a blue square"]
    many = inpaint(caps, clips, masks, num_inference_steps=2, num_videos_per_prompt=2,
                   generator=[torch.Generator().manual_seed(s) for s in range(4)])
    assert many.prompts == [caps[0], caps[0], caps[1], caps[1]]
    for j in range(4):
        i = j // 2
        one = inpaint(caps[i], clips[i:i + 1], masks[i:i + 1], num_inference_steps=2,
                      generator=torch.Generator().manual_seed(j))
        assert torch.allclose(many.videos[j], one.videos[0], atol=1e-4), j


def test_set_progress_bar_config_as_in_diffusers(tiny_cascade_dir, capsys):
    # scripts written for diffusers call it (an AttributeError here until 2026-12-02); bars stay off by default
    pipe = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)
    kw = {"num_inference_steps": 3, "generator": torch.Generator().manual_seed(0)}
    pipe("a red circle", **kw)
    assert "denoising" not in capsys.readouterr().err
    pipe.set_progress_bar_config(disable=False, desc="my bar")
    pipe("a red circle", **kw)
    err = capsys.readouterr().err
    assert err.count("my bar") >= 2  # the base stage's bar and the super-resolution stage's
    pipe.set_progress_bar_config(disable=True)
    pipe("a red circle", **kw)
    assert "my bar" not in capsys.readouterr().err
    pipe("a red circle", progress=True, **kw)  # a call's own progress=True still shows them
    assert "denoising" in capsys.readouterr().err
    with pytest.raises(ValueError, match="disable must be True or False"):
        pipe.set_progress_bar_config(disable="yes")


def test_the_other_pipelines_take_a_list_of_generators(tiny_conditional_dir, tiny_pipeline_dir):
    from vidiff.pipelines.conditional import ImageToVideoPipeline
    from vidiff.pipelines.edit import VideoEditPipeline

    clip = torch.rand(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    for pipe, call in ((ImageToVideoPipeline.from_pretrained(tiny_conditional_dir),
                        lambda p, v, g: p("a red circle", v[:, :, 0], generator=g, sampler="ddpm",
                                          num_inference_steps=3)),
                       (VideoEditPipeline.from_pretrained(tiny_pipeline_dir),
                        lambda p, v, g: p("a red circle", v, strength=0.8, generator=g, sampler="ddpm",
                                          num_inference_steps=6))):
        both = call(pipe, clip, [torch.Generator().manual_seed(s) for s in (1, 2)]).videos
        for i, s in enumerate((1, 2)):
            one = call(pipe, clip[i:i + 1], torch.Generator().manual_seed(s)).videos[0]
            assert torch.allclose(both[i], one, atol=1e-4), (type(pipe).__name__, i)
        with pytest.raises(ValueError, match="a list of 3 generators for 2 videos"):
            call(pipe, clip, [torch.Generator()] * 3)


def test_bad_models_devices_and_style_weights_are_value_errors(tiny_pipeline_dir, tiny_cascade_dir):
    for bad in (None, 3):  # a TypeError from os.fspath before
        with pytest.raises(ValueError, match="a model is a folder path"):
            TextToVideoPipeline.from_pretrained(bad)
    with pytest.raises(ValueError, match="base_only must be True or False, got 'no'"):  # read as true before
        TextToVideoPipeline.from_pretrained(tiny_cascade_dir, base_only="no")
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    if not torch.cuda.is_available():  # torch's AssertionError 'Torch not compiled with CUDA enabled' before
        with pytest.raises(ValueError, match="no CUDA device"):
            pipe.to("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        pipe.to(5)
    for alpha in ("0.5", True):  # "0.5" was read as 0.5
        with pytest.raises(ValueError, match="alpha must be a number"):
            pipe.with_style(tiny_pipeline_dir, alpha=alpha)
    for alpha, words in ((float("nan"), "alpha must be a finite number, got nan"),
                         (1.5, r"alpha must be in \[0.0, 1.0\], got 1.5")):  # the CLI's --alpha says the same
        with pytest.raises(ValueError, match=words):
            pipe.with_style(tiny_pipeline_dir, alpha=alpha)
    assert pipe.with_style(tiny_pipeline_dir, alpha=np.float32(0.5)).style["alpha"] == 0.5


def test_diffusers_loading_keywords_are_taken_or_refused_in_one_line(tiny_pipeline_dir, tmp_path, monkeypatch):
    """The loading code of diffusers' examples (use_safetensors=True, variant="fp16", local_files_only=True, a hub
    id) was a TypeError or a bare 'does not exist'."""
    monkeypatch.chdir(tmp_path)
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, use_safetensors=True, local_files_only=True)
    plain = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, local_files_only=False)
    for a, b in zip(pipe.unet.state_dict().values(), plain.unet.state_dict().values()):
        assert torch.equal(a, b)
    for kwargs, words in (({"use_safetensors": False}, "safetensors only"), ({"variant": "fp16"}, "torch_dtype"),
                          ({"local_files_only": "yes"}, "local_files_only must be True or False")):
        with pytest.raises(ValueError, match=words):
            TextToVideoPipeline.from_pretrained(tiny_pipeline_dir, **kwargs)
    with pytest.raises(ValueError, match="fetches nothing from a model hub.*hf download someone/model"):
        TextToVideoPipeline.from_pretrained("someone/model")
    (tmp_path / "runs").mkdir()  # a mistyped local path is not taken for a hub id
    with pytest.raises(ValueError, match="does not exist; give a pipeline folder"):
        TextToVideoPipeline.from_pretrained("runs/model")


def test_bad_images_videos_and_masks_are_value_errors(tiny_pipeline_dir, tiny_conditional_dir, tiny_ssr_dir):
    import numpy as np

    from vidiff.pipelines.conditional import ImageToVideoPipeline, VideoInpaintPipeline
    from vidiff.pipelines.edit import VideoEditPipeline
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    i2v = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
    for image in (None, "frame.png", np.full((8, 8, 3), 2.0), torch.full((1, 3, 8, 8), float("nan")),
                  torch.zeros(0, 3, 8, 8)):  # a NaN image passed the range check (NaN < 0 is False)
        with pytest.raises(ValueError, match="the image must be a float tensor"):
            i2v("a red circle", image, num_inference_steps=2)
    for video in (None, torch.full((1, 3, 4, 8, 8), float("nan"))):
        with pytest.raises(ValueError, match="the video must be a float tensor"):
            VideoEditPipeline.from_pretrained(tiny_pipeline_dir)("a red circle", video, num_inference_steps=2)
    with pytest.raises(ValueError, match="the low-resolution video must be a float tensor"):
        SuperResolutionPipeline.from_pretrained(tiny_ssr_dir)("a red circle", None)
    with pytest.raises(ValueError, match="a mask must be a tensor"):
        VideoInpaintPipeline.from_pretrained(tiny_conditional_dir)("a red circle", torch.rand(1, 3, 4, 8, 8), None,
                                                                   num_inference_steps=2)
    # tensors of the wrong rank were unpacked before any check ("not enough values to unpack (expected 5, got 4)")
    from vidiff.pipelines.conditional import CinemagraphPipeline

    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    inpaint = VideoInpaintPipeline.from_pretrained(tiny_conditional_dir)
    with pytest.raises(ValueError, match=r"the video must be \(b, 3, t, h, w\), got \(3, 4, 8, 8\)"):
        inpaint("a red circle", torch.rand(3, 4, 8, 8), mask, num_inference_steps=2)
    with pytest.raises(ValueError, match=r"the image must be \(b, 3, h, w\), got \(3, 8, 8\)"):
        CinemagraphPipeline.from_pretrained(tiny_conditional_dir)("a red circle", torch.rand(3, 8, 8), mask,
                                                                  num_inference_steps=2)
    with pytest.raises(ValueError, match="a mask must be binary"):
        i2v.generate("a red circle", torch.rand(1, 3, 4, 8, 8), torch.full((1, 1, 4, 8, 8), 0.5), num_inference_steps=2)
    # numbers given as text went through float(), and keep_known="no" read as true
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline as SR

    for call, says in ((lambda: VideoEditPipeline.from_pretrained(tiny_pipeline_dir)(
                            "a red circle", torch.rand(1, 3, 4, 8, 8), strength="0.5", num_inference_steps=2),
                        "strength must be a number, got '0.5'"),
                       (lambda: i2v("a red circle", torch.rand(1, 3, 8, 8), condition_guidance_scale="2",
                                    num_inference_steps=2), "condition_guidance_scale must be a number"),
                       (lambda: i2v("a red circle", torch.rand(1, 3, 8, 8), keep_known="no", num_inference_steps=2),
                        "keep_known must be True or False"),
                       (lambda: SR.from_pretrained(tiny_ssr_dir)("a red circle", torch.rand(1, 3, 4, 8, 8),
                                                                 noise_level=True), "noise_level must be a number")):
        with pytest.raises(ValueError, match=says):
            call()


def test_a_swapped_scheduler_is_used(tiny_pipeline_dir):
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    from diffusers import DPMSolverMultistepScheduler

    assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler)  # with vidiff's step spacing
    base = pipe("a red circle", generator=torch.Generator().manual_seed(0))
    steps = []

    class Counting(EulerDiscreteScheduler):
        def step(self, *a, **k):
            steps.append(1)
            return super().step(*a, **k)

    pipe.scheduler = Counting.from_config(pipe.scheduler.config)
    euler = pipe("a red circle", generator=torch.Generator().manual_seed(0))
    assert len(steps) == 3 and euler.settings["sampler"] == "Counting"
    assert not torch.equal(euler.videos, base.videos) and torch.isfinite(euler.videos).all()
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    assert pipe("a red circle", generator=torch.Generator().manual_seed(0)).settings["sampler"] == "ddim"
    # a sampler named in the call wins over pipe.scheduler
    named = pipe("a red circle", sampler="dpm++", generator=torch.Generator().manual_seed(0))
    assert torch.equal(named.videos, base.videos)


def test_custom_timesteps_as_in_diffusers(tiny_pipeline_dir, tiny_conditional_dir):
    """diffusers' ``timesteps=`` (a custom step grid, e.g. Align-Your-Steps): the grid the call runs, the same video
    as the number of steps that makes that grid, SDEdit's part of it, and one line where it cannot run."""
    from vidiff import ImageToVideoPipeline, VideoEditPipeline

    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    seen = []

    def record(p, i, t, kw):
        seen.append(int(t))
        return kw

    def call(fn, *args, **kw):
        seen.clear()
        return fn(*args, generator=torch.Generator().manual_seed(0), callback_on_step_end=record, **kw)

    pipe.defaults["logsnr_min"] = -8.5  # DPM++ spaced as the embedded default spaces it
    a = call(pipe, "a red circle", num_inference_steps=4, sampler="dpm++")
    grid = list(seen)
    b = call(pipe, "a red circle", timesteps=grid, sampler="dpm++")
    assert seen == grid and torch.equal(a.videos, b.videos)
    assert b.settings["timesteps"] == grid and b.settings["num_inference_steps"] == 4
    pipe.defaults["logsnr_min"] = None  # diffusers' own log-SNR spacing (use_lu_lambdas, which refuses a grid)
    lu = call(pipe, "a red circle", num_inference_steps=4, sampler="dpm++")
    lu_grid = list(seen)
    given = call(pipe, "a red circle", timesteps=lu_grid, sampler="dpm++")  # its sigmas from the whole timesteps
    assert seen == lu_grid and (lu.videos - given.videos).abs().max() < 0.02
    for sampler in ("dpm++-sde", "ddpm"):
        c = call(pipe, "a red circle", timesteps=torch.tensor([999, 600, 300, 50]), sampler=sampler)
        assert seen == [999, 600, 300, 50] and not torch.equal(c.videos, a.videos), sampler
    e = call(VideoEditPipeline.from_pipe(pipe), "a blue square", a.videos, strength=0.5,
             timesteps=[999, 600, 400, 100], sampler="dpm++")
    assert seen == [400, 100] and e.settings["start_timestep"] == 400
    i2v = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
    call(i2v, "a red circle", torch.rand(1, 3, 16, 16), timesteps=[900, 500, 10], sampler="ddpm")
    assert seen == [900, 500, 10]
    for kwargs, words in (({"timesteps": [999, 500], "sampler": "ddim"}, "DDIMScheduler takes no custom timesteps"),
                          ({"timesteps": [10, 500]}, "fall strictly"), ({"timesteps": [1000, 5]}, r"in \[0, 999\]"),
                          ({"timesteps": []}, "non-empty list"), ({"timesteps": "999"}, "non-empty list"),
                          ({"timesteps": [999, 2.5]}, "timesteps"),
                          ({"timesteps": [999, 500, 1], "num_inference_steps": 4}, "disagree")):
        with pytest.raises(ValueError, match=words):
            pipe("a red circle", sampler=kwargs.pop("sampler", "dpm++"), **kwargs)
    pipe.enable_free_init(num_iters=2)
    with pytest.raises(ValueError, match="FreeInit"):
        pipe("a red circle", timesteps=[999, 500], sampler="dpm++")


def test_guidance_rescale_and_eta_as_in_diffusers(tmp_path, tiny_pipeline_dir, tiny_conditional_dir):
    """diffusers' ``guidance_rescale=`` and ``eta=``: off by default (the video of a call without them), acting only
    where they should (rescaled guidance on guided steps, eta on DDIM), recorded, a folder's own default honoured,
    and a value that cannot act refused in one line."""
    import shutil

    from vidiff import ImageToVideoPipeline, VideoEditPipeline

    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)

    def call(fn, *args, **kw):
        return fn(*args, generator=torch.Generator().manual_seed(0), **kw)

    base = call(pipe, "a red circle", guidance_scale=4.0)
    assert base.settings["guidance_rescale"] == 0.0 and base.settings["eta"] == 0.0
    assert torch.equal(call(pipe, "a red circle", guidance_scale=4.0, guidance_rescale=0.0, eta=0.0).videos, base.videos)
    rescaled = call(pipe, "a red circle", guidance_scale=4.0, guidance_rescale=0.7)
    assert rescaled.settings["guidance_rescale"] == 0.7 and not torch.equal(rescaled.videos, base.videos)
    # without guidance there is nothing to rescale
    assert torch.equal(call(pipe, "a red circle", guidance_scale=1.0, guidance_rescale=0.7).videos,
                       call(pipe, "a red circle", guidance_scale=1.0).videos)
    ddim = call(pipe, "a red circle", sampler="ddim")
    noisy = call(pipe, "a red circle", sampler="ddim", eta=1.0)
    assert noisy.settings["eta"] == 1.0 and not torch.equal(noisy.videos, ddim.videos)
    assert torch.equal(call(pipe, "a red circle", sampler="ddim", eta=1.0).videos, noisy.videos)  # the seed decides
    edit = VideoEditPipeline.from_pipe(pipe)
    e0 = call(edit, "a blue square", base.videos, strength=0.8, sampler="ddim")
    e1 = call(edit, "a blue square", base.videos, strength=0.8, sampler="ddim", eta=1.0, guidance_rescale=0.5)
    assert e1.settings["eta"] == 1.0 and not torch.equal(e0.videos, e1.videos)
    i2v = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(call(i2v, "a red circle", image, guidance_scale=4.0, guidance_rescale=1.0).videos,
                           call(i2v, "a red circle", image, guidance_scale=4.0).videos)
    # a folder's own default, as for every sampling setting
    own = tmp_path / "own"
    shutil.copytree(tiny_pipeline_dir, own)
    meta = json.loads((own / "vidiff_pipeline.json").read_text())
    meta.setdefault("defaults", {})["guidance_rescale"] = 0.7
    (own / "vidiff_pipeline.json").write_text(json.dumps(meta))
    assert torch.equal(call(TextToVideoPipeline.from_pretrained(own), "a red circle", guidance_scale=4.0).videos,
                       rescaled.videos)
    meta["defaults"]["guidance_rescale"] = 2
    (own / "vidiff_pipeline.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"'defaults.guidance_rescale' must be a number in \[0, 1\], got 2"):
        TextToVideoPipeline.from_pretrained(own)
    for kwargs, words in (({"eta": 0.5}, "eta=0.5 is DDIM's; DPMSolver"), ({"eta": 0.5, "sampler": "dpm++-sde"}, "DDIM's"),
                          ({"eta": 1.5, "sampler": "ddim"}, r"eta must be in \[0.0, 1.0\]"),
                          ({"guidance_rescale": -0.1}, "guidance_rescale must be in"),
                          ({"guidance_rescale": float("nan")}, "finite"), ({"guidance_rescale": "0.7"}, "a number"),
                          ({"eta": True, "sampler": "ddim"}, "a number")):
        with pytest.raises(ValueError, match=words):
            pipe("a red circle", **kwargs)


def test_guidance_rescale_and_eta_flags_equal_the_library(tmp_path, tiny_pipeline_dir):
    out = tmp_path / "clip"
    assert main(["generate", "a red circle", "--model", str(tiny_pipeline_dir), "--seed", "3", "--sampler", "ddim",
                 "--eta", "0.6", "--guidance-rescale", "0.5", "--guidance", "4", "-o", str(out), "-q"]) == 0
    video = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)(
        "a red circle", generator=torch.Generator().manual_seed(3), sampler="ddim", eta=0.6, guidance_rescale=0.5,
        guidance_scale=4.0)
    assert np.array_equal(png_frames(out), video.to_uint8()[0])
    side = json.loads((tmp_path / "clip.json").read_text())
    assert side["eta"] == 0.6 and side["guidance_rescale"] == 0.5 and side["sampler"] == "ddim"


def test_dtype_device_and_callback(tiny_cascade_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_cascade_dir, torch_dtype=torch.float64)
    assert pipe.dtype == torch.float64 and pipe.super_resolution.dtype == torch.float64
    assert pipe.to("cpu") is pipe and pipe.device.type == "cpu"
    pipe.to(torch.float32)
    assert pipe.dtype == torch.float32 and pipe.super_resolution.dtype == torch.float32
    with pytest.raises(ValueError, match="device"):
        pipe.to("nonsense")
    with pytest.raises(ValueError, match="torch_dtype"):
        TextToVideoPipeline.from_pretrained(tiny_cascade_dir, torch_dtype=torch.int8)
    seen = []

    def cb(p, i, t, kw):
        seen.append((p.task, i))
        return {"latents": kw["latents"] * 0} if p.task == "super-resolution" and i == 2 else kw

    out = pipe("a red circle", generator=torch.Generator().manual_seed(0), callback_on_step_end=cb)
    assert seen == [("text-to-video", 0), ("text-to-video", 1), ("text-to-video", 2),
                    ("super-resolution", 0), ("super-resolution", 1), ("super-resolution", 2)]
    assert torch.allclose(out.videos, torch.full_like(out.videos, 0.5))  # the zeroed last sample: mid-grey
    # diffusers' callback_on_step_end_tensor_inputs (a TypeError before): the kwargs hold the tensors named there
    got = []
    same = pipe("a red circle", generator=torch.Generator().manual_seed(0), callback_on_step_end=cb,
                callback_on_step_end_tensor_inputs=["latents"])
    assert torch.equal(same.videos, out.videos)
    pipe("a red circle", generator=torch.Generator().manual_seed(0), base_only=True,
         callback_on_step_end=lambda p, i, t, kw: got.append(sorted(kw)) or {},
         callback_on_step_end_tensor_inputs=[])
    assert got == [[], [], []]
    for bad, says in ((["prompt_embeds"], "names 'prompt_embeds'; a vidiff pipeline's step callback gets 'latents'"),
                      ("latents", "must be a list of names")):
        with pytest.raises(ValueError, match=says):
            pipe("a red circle", callback_on_step_end=cb, callback_on_step_end_tensor_inputs=bad)


def test_defaults_live_in_the_folder_then_the_pipeline(tmp_path, tiny_text_encoder):
    from conftest import make_tiny_pipeline

    d = make_tiny_pipeline(tmp_path / "m", tiny_text_encoder, defaults={"sampler": "ddim", "strength": 0.3})
    pipe = TextToVideoPipeline.from_pretrained(d)
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    long = pipe("a red circle", num_frames=12, window=4)
    assert (long.settings["stride"], long.settings["window_weighting"]) == (1, "triangle")
    from vidiff.pipelines.edit import VideoEditPipeline
    edit = VideoEditPipeline.from_pretrained(d)("a red circle", torch.rand(1, 3, 4, 8, 8), num_inference_steps=10)
    assert edit.settings["strength"] == 0.3 and edit.settings["sampler"] == "ddim"
    # a folder records its own per-call defaults, not copies of the library's (which may change)
    pipe.save_pretrained(tmp_path / "again")
    saved = json.loads((tmp_path / "again" / "vidiff_pipeline.json").read_text())["defaults"]
    assert (saved["sampler"], saved["strength"], saved["num_frames"]) == ("ddim", 0.3, 4)
    assert "alpha" not in saved and "window_weighting" not in saved
    (d / "vidiff_pipeline.json").write_text(
        (d / "vidiff_pipeline.json").read_text().replace('"sampler": "ddim"', '"sampler": "heun"'))
    with pytest.raises(ValueError, match="sampler"):
        TextToVideoPipeline.from_pretrained(d)


def test_words_outside_the_vocabulary_are_warned_about(tmp_path, tiny_text_encoder):
    from conftest import make_tiny_pipeline

    d = make_tiny_pipeline(tmp_path / "m", tiny_text_encoder, extra={"vocabulary": ["a", "red", "circle"]})
    pipe = TextToVideoPipeline.from_pretrained(d)
    with pytest.warns(UserWarning, match="never saw 'dog', 'running'") as seen:
        pipe("a dog running", num_inference_steps=1)
    where = lambda ws: [Path(w.filename).name for w in ws if "never saw" in str(w.message)]  # noqa: E731
    assert where(seen) == ["test_library_api.py"]  # the caller's line, not vidiff's
    from vidiff.pipelines.edit import VideoEditPipeline

    with pytest.warns(UserWarning, match="never saw 'dog'") as seen:  # three calls deeper in the video pipelines
        VideoEditPipeline.from_pipe(pipe)("a dog", torch.rand(1, 3, 4, 8, 8), strength=0.8, num_inference_steps=4)
    assert where(seen) == ["test_library_api.py"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        pipe("a red circle", num_inference_steps=1)
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "vidiff", "generate", "a red dog", "--model", str(d), "-o",
                        str(tmp_path / "x.gif"), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0
    assert r.stderr.strip().splitlines() == ["vidiff: warning: the model never saw 'dog' in training; expect it to "
                                             "ignore it"]


def test_version_and_sampler_choices(capsys):
    from vidiff import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"vidiff {__version__}"
    with pytest.raises(SystemExit) as e:
        main(["generate", "a red circle", "--sampler", "heun"])
    assert e.value.code == 2 and "choose from" in capsys.readouterr().err


def test_upscale_reads_a_base_only_clip_back_at_its_model_size(tmp_path, tiny_pipeline_dir, tiny_ssr_dir):
    low = tmp_path / "low.mp4"
    assert main(["generate", "a red circle", "--model", str(tiny_pipeline_dir), "--base-only", "-o", str(low),
                 "-q"]) == 0
    from vidiff.io.video import read_video
    assert read_video(low)[0].shape[1] == 256  # written for players
    assert main(["upscale", str(low), "a red circle", "--model", str(tiny_ssr_dir), "-o", str(tmp_path / "up"),
                 "-q"]) == 0
    assert png_frames(tmp_path / "up").shape == (4, 16, 16, 3)
    assert main(["generate", "a red circle", "--model", str(tiny_pipeline_dir), "--base-only", "--native-size",
                 "-o", str(tmp_path / "n.mp4"), "-q"]) == 0
    assert read_video(tmp_path / "n.mp4")[0].shape[1:3] == (8, 8)


def test_an_embedded_name_that_is_also_a_folder_here_says_which_one_is_used(tmp_path, monkeypatch):
    """A user's own ./ssr was silently passed over for the embedded 'ssr'."""
    import warnings

    import vidiff.registry as registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "_WARNED", set())
    (tmp_path / "ssr").mkdir()
    with pytest.warns(UserWarning, match=r"'ssr' is the embedded model; the folder 'ssr' here is not used \(write ./ssr"):
        assert registry.resolve_model("ssr") == registry.weights_dir() / "ssr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per name
        registry.resolve_model("ssr")
    with pytest.raises(ValueError, match="not a vidiff pipeline folder"):
        registry.resolve_model("./ssr")  # written as a path: the folder here


def test_what_the_commands_run_is_a_top_level_name_with_the_same_defaults(tmp_path):
    import inspect

    import vidiff
    from vidiff.evaluation.report import DEFAULT_SAMPLES, DEFAULT_SUITE, evaluate_model
    from vidiff.training.trainer import train

    assert vidiff.train is train and vidiff.evaluate_model is evaluate_model
    assert {"load_config", "evaluate_folders", "inflate", "TextToVideoZeroPipeline"} <= set(dir(vidiff))
    for name in vidiff.__all__:
        assert getattr(vidiff, name) is not None, name
    # the suite and its size default to what `vidiff evaluate --model M` generates (the library required both)
    params = inspect.signature(evaluate_model).parameters
    assert params["suite"].default is None and params["samples"].default is None
    assert (DEFAULT_SUITE, DEFAULT_SAMPLES) == ("shapes-test", 200)
    # the settings are keywords: the old positional order (model, suite, samples, out_dir) is a TypeError before
    # anything is written, not a report folder named after the suite
    with pytest.raises(TypeError):
        evaluate_model("default", "shapes-test", 4, str(tmp_path / "r"))
    assert not (tmp_path / "r").exists() and not Path("shapes-test").exists()


def test_save_writes_what_the_cli_writes_and_checks_every_path_first(tmp_path, tiny_pipeline_dir):
    # the CLI's video, contact sheet and settings sidecar were written by the CLI alone; a library user had
    # export_to_video and no sidecar
    assert main(["generate", "a red circle moving left", "--model", str(tiny_pipeline_dir), "--seed", "5",
                 "-o", str(tmp_path / "cli"), "-q"]) == 0
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    out = pipe(["a blue square", "a red circle moving left"],
               generator=[torch.Generator().manual_seed(s) for s in (1, 5)])
    written = out.save(tmp_path / "lib", index=1, extra={"seed": 5})
    assert [p.name for p in written] == ["lib", "lib.png", "lib.json"]
    assert np.array_equal(png_frames(tmp_path / "lib"), png_frames(tmp_path / "cli"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "lib.png")), np.asarray(Image.open(tmp_path / "cli.png")))
    cli, lib = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("cli", "lib"))
    assert lib["prompt"] == "a red circle moving left" and lib["seed"] == 5
    assert {k: cli[k] for k in lib} == lib  # the CLI's sidecar is the library's plus the command's own keys
    # every path is checked before anything is written: an existing sidecar leaves no video behind
    (tmp_path / "b.json").write_text("mine")
    with pytest.raises(ValueError, match="b.json' already exists"):
        out.save(tmp_path / "b.mp4")
    assert not (tmp_path / "b.mp4").exists() and not (tmp_path / "b.png").exists()
    assert (tmp_path / "b.json").read_text() == "mine"
    for kwargs, words in (({"index": 2}, r"index must be an integer in \[0, 1\], got 2"), ({"fps": 0}, "fps must be"),
                          ({"extra": {"t": torch.ones(1)}}, "JSON"), ({"extra": {"x": float("nan")}}, "JSON")):
        with pytest.raises(ValueError, match=words):
            out.save(tmp_path / "c.mp4", **kwargs)
    assert not list(tmp_path.glob("c.*"))
    out.save(tmp_path / "c.gif", sheet=False, fps=4)
    assert json.loads((tmp_path / "c.json").read_text())["fps"] == 4 and not (tmp_path / "c.png").exists()


def test_from_pipe_shares_the_modules_and_gives_what_from_pretrained_gives(tiny_cascade_dir, tiny_conditional_dir):
    # diffusers' from_pipe: editing with the text-to-video pipeline's model loaded a second copy of it
    from vidiff.pipelines.conditional import ImageToVideoPipeline, VideoInpaintPipeline
    from vidiff.pipelines.edit import VideoEditPipeline

    pipe = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)
    edit = VideoEditPipeline.from_pipe(pipe)
    assert type(edit) is VideoEditPipeline and edit.unet is pipe.unet and edit.text_encoder is pipe.text_encoder
    assert edit.super_resolution is pipe.super_resolution and edit.path == pipe.path
    clip = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    kw = {"strength": 0.8, "num_inference_steps": 6}
    a = edit("a blue square", clip, generator=torch.Generator().manual_seed(1), **kw)
    b = VideoEditPipeline.from_pretrained(tiny_cascade_dir)("a blue square", clip,
                                                           generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(a.videos, b.videos) and a.settings == b.settings
    i2v = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
    assert VideoInpaintPipeline.from_pipe(i2v).unet is i2v.unet
    with pytest.raises(ValueError, match="ImageToVideoPipeline runs a conditional model; this pipeline holds a "
                                         "text-to-video model"):
        ImageToVideoPipeline.from_pipe(pipe)
    with pytest.raises(ValueError, match="from_pipe takes a vidiff pipeline, got str"):
        VideoEditPipeline.from_pipe("default")
    # diffusers' components (an AttributeError before): another pipeline over the same modules, shared
    base = TextToVideoPipeline.from_pretrained(tiny_cascade_dir, base_only=True)
    other = VideoEditPipeline(**base.components)
    assert other.unet is base.unet and other.text_encoder is base.text_encoder and other.scheduler is base.scheduler
    c = other("a blue square", clip, generator=torch.Generator().manual_seed(1), **kw)
    d = VideoEditPipeline.from_pipe(base)("a blue square", clip, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(c.videos, d.videos) and c.settings == d.settings


def test_pil_images_frames_and_masks_are_read_as_the_cli_reads_files(tmp_path, tiny_conditional_dir, tiny_pipeline_dir):
    # diffusers' pipelines take PIL images (a list of them for a video) and resize them to the pipeline's size; a
    # PIL image given to vidiff's was "the image must be a float tensor"
    from vidiff.io.inputs import read_clip, read_image, read_mask
    from vidiff.io.video import write_video
    from vidiff.pipelines.conditional import CinemagraphPipeline, ImageToVideoPipeline, VideoInpaintPipeline
    from vidiff.pipelines.edit import VideoEditPipeline

    rng = np.random.default_rng(0)
    big = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(4)]  # 4x the model's
    big[0].save(tmp_path / "img.png")
    write_video(np.stack([np.asarray(f) for f in big]), tmp_path / "clip")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    i2v = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
    image, clip, region = read_image(tmp_path / "img.png", 8, 8), read_clip(tmp_path / "clip", 4, 8, 8)[0], \
        read_mask(tmp_path / "mask.png", 8, 8)
    kw = {"num_inference_steps": 2}
    assert torch.equal(i2v("a red circle", big[0], generator=g(), **kw).videos,
                       i2v("a red circle", image, generator=g(), **kw).videos)
    assert i2v("a red circle", big[:2], generator=g(), **kw).videos.shape[0] == 2  # a list of images: a batch
    inpaint, cine = VideoInpaintPipeline.from_pipe(i2v), CinemagraphPipeline.from_pipe(i2v)
    assert torch.equal(inpaint("a red circle", big, Image.fromarray(mask), generator=g(), **kw).videos,
                       inpaint("a red circle", clip, region, generator=g(), **kw).videos)
    assert torch.equal(cine("a red circle", big[0], Image.fromarray(mask), generator=g(), **kw).videos,
                       cine("a red circle", image, region, generator=g(), **kw).videos)
    edit = VideoEditPipeline.from_pretrained(tiny_pipeline_dir)
    assert torch.equal(edit("a blue square", big, strength=0.8, num_inference_steps=6, generator=g()).videos,
                       edit("a blue square", clip, strength=0.8, num_inference_steps=6, generator=g()).videos)
    with pytest.raises(ValueError, match="the image is 64x32 .*, but the model takes 8x8: crop it"):
        i2v("a red circle", Image.new("RGB", (64, 32)), **kw)
    with pytest.raises(ValueError, match="the video's PIL images differ in size"):
        inpaint("a red circle", [big[0], Image.new("RGB", (16, 16))], Image.fromarray(mask), **kw)


def test_numpy_pictures_in_diffusers_layout_and_a_pipelines_own_frames_chain(tiny_conditional_dir, tiny_pipeline_dir,
                                                                             tiny_ssr_dir):
    # diffusers' pipelines take channel-last numpy pictures (float in [0, 1]), and output_type="np" frames are
    # such arrays; vidiff's refused them ("the video must be a float tensor"), so one pipeline's frames could not
    # feed the next without a torch detour
    from vidiff.pipelines.conditional import CinemagraphPipeline, ImageToVideoPipeline, VideoInpaintPipeline
    from vidiff.pipelines.edit import VideoEditPipeline
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    base = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)("a red circle", num_inference_steps=2, generator=g())
    edit = VideoEditPipeline.from_pretrained(tiny_pipeline_dir)
    kw = {"strength": 0.8, "num_inference_steps": 6}
    from_tensor = edit("a blue square", base.videos, generator=g(), **kw).videos
    assert torch.equal(edit("a blue square", base.frames, generator=g(), **kw).videos, from_tensor)  # (b, t, h, w, 3)
    assert torch.equal(edit("a blue square", base.frames[0], generator=g(), **kw).videos, from_tensor)  # (t, h, w, 3)
    assert torch.equal(edit("a blue square", list(base.frames[0]), generator=g(), **kw).videos, from_tensor)  # frames
    sr = SuperResolutionPipeline.from_pretrained(tiny_ssr_dir)
    assert torch.equal(sr("a red circle", base.frames, num_inference_steps=2, generator=g()).videos,
                       sr("a red circle", base.videos, num_inference_steps=2, generator=g()).videos)

    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)  # uint8 pictures: resized as PIL images are
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    i2v = ImageToVideoPipeline.from_pretrained(tiny_conditional_dir)
    kw = {"num_inference_steps": 2}
    assert torch.equal(i2v("a red circle", big[0], generator=g(), **kw).videos,
                       i2v("a red circle", Image.fromarray(big[0]), generator=g(), **kw).videos)
    small = rng.random((2, 8, 8, 3)).astype(np.float32)  # a float batch: taken as the tensor it is
    assert torch.equal(i2v(["a red circle", "a blue square"], small, generator=[g(), g()], **kw).videos,
                       i2v(["a red circle", "a blue square"], torch.from_numpy(small).permute(0, 3, 1, 2),
                           generator=[g(), g()], **kw).videos)
    inpaint, cine = VideoInpaintPipeline.from_pipe(i2v), CinemagraphPipeline.from_pipe(i2v)
    pil_frames = [Image.fromarray(f) for f in big]
    assert torch.equal(inpaint("a red circle", list(big), mask, generator=g(), **kw).videos,
                       inpaint("a red circle", pil_frames, Image.fromarray(mask), generator=g(), **kw).videos)
    region = np.zeros((8, 8), bool)
    region[2:6, 2:6] = True
    as_tensor = torch.from_numpy(region).float()[None, None]
    assert torch.equal(cine("a red circle", big[0], region, generator=g(), **kw).videos,
                       cine("a red circle", big[0], as_tensor, generator=g(), **kw).videos)
    per_frame = np.stack([region] * 4)  # (t, h, w): a mask per frame
    assert torch.equal(inpaint("a red circle", big, per_frame, generator=g(), **kw).videos,
                       inpaint("a red circle", big, as_tensor[:, :, None].expand(-1, -1, 4, -1, -1), generator=g(),
                               **kw).videos)

    for call, says in ((lambda: i2v("a red circle", np.zeros((1, 3, 8, 8), np.float32), **kw), "channel-last RGB"),
                       (lambda: i2v("a red circle", np.zeros((8, 8, 3), np.int64), **kw), "got dtype int64"),
                       (lambda: edit("a red circle", np.zeros((1, 3, 4, 8, 8), np.float32), **kw), "channel-last"),
                       (lambda: edit("a red circle", [np.zeros((8, 8, 3)), np.zeros((4, 4, 3))], **kw),
                        "differ in shape"),
                       (lambda: edit("a red circle", np.full((4, 8, 8, 3), 1.5), **kw), "values in \\[0, 1\\]"),
                       (lambda: cine("a red circle", big[0], np.zeros((1, 1, 8, 8), bool), **kw),
                        "must be \\(h, w\\), or \\(t, h, w\\)"),
                       (lambda: cine("a red circle", big[0], np.full((8, 8), 0.5), **kw), "a mask must be binary"),
                       (lambda: cine("a red circle", big[0], np.ones((8, 8), np.int32), **kw), "got dtype int32"),
                       (lambda: i2v("a red circle", np.zeros((32, 64, 3), np.uint8), **kw), "crop it")):
        with pytest.raises(ValueError, match=says):
            call()


def test_prompt_embeds_and_encode_prompt_as_in_diffusers(tiny_pipeline_dir, tiny_cascade_dir):
    # diffusers' pipelines take prompt_embeds (and, where the text encoder pads, the attention mask: LTX, PixArt)
    # in place of the captions, made by pipe.encode_prompt; both were a TypeError / AttributeError here
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    g = lambda s=0: torch.Generator().manual_seed(s)  # noqa: E731
    kw = {"num_inference_steps": 3}
    caps, negs = ["a red circle moving left", "a blue square moving up"], ["a green circle", ""]
    e, m, ne, nm = pipe.encode_prompt(caps, negative_prompt=negs)
    assert e.shape[:2] == m.shape and m.dtype == torch.bool and e.shape[-1] == pipe.text_encoder.dim
    by_text = pipe(caps, negative_prompt=negs, generator=[g(0), g(1)], **kw)
    by_embeds = pipe(prompt_embeds=e, prompt_attention_mask=m, negative_prompt_embeds=ne,
                     negative_prompt_attention_mask=nm, generator=[g(0), g(1)], **kw)
    assert torch.equal(by_embeds.videos, by_text.videos)  # the same denoiser inputs, bit for bit
    assert by_embeds.settings["prompt_embeds"] == list(e.shape) and by_embeds.prompts == [None, None]
    # the negative side from text, embeddings repeated per video, one negative row for every caption
    half = pipe(prompt_embeds=e, prompt_attention_mask=m, negative_prompt=negs, generator=[g(0), g(1)], **kw)
    assert torch.equal(half.videos, by_text.videos)
    e1, m1, ne1, nm1 = pipe.encode_prompt(caps[0], num_videos_per_prompt=2)
    assert e1.shape[0] == ne1.shape[0] == 2
    many = pipe(prompt_embeds=e1[:1], prompt_attention_mask=m1[:1], num_videos_per_prompt=2, generator=[g(0), g(1)],
                **kw)
    assert torch.equal(many.videos, pipe(caps[0], num_videos_per_prompt=2, generator=[g(0), g(1)], **kw).videos)
    assert pipe.encode_prompt(caps[0], do_classifier_free_guidance=False)[2:] == (None, None)

    cascade = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)
    one = cascade.encode_prompt(caps[0])
    assert torch.equal(cascade(prompt_embeds=one[0], prompt_attention_mask=one[1], base_only=True, generator=g(),
                               **kw).videos, cascade(caps[0], base_only=True, generator=g(), **kw).videos)
    for call, says in (
            (lambda: cascade(prompt_embeds=one[0], prompt_attention_mask=one[1], **kw), "give base_only=True"),
            (lambda: pipe(caps[0], prompt_embeds=e, prompt_attention_mask=m, **kw), "not both"),
            (lambda: pipe(**kw), "give a prompt .* or prompt_embeds"),
            (lambda: pipe(prompt_embeds=e, **kw), "prompt_attention_mask must be given with prompt_embeds"),
            (lambda: pipe(prompt_embeds=e[..., :4], prompt_attention_mask=m, **kw), "features per token"),
            (lambda: pipe(prompt_embeds=e.long(), prompt_attention_mask=m, **kw), "must be a float tensor"),
            (lambda: pipe(prompt_embeds=e * float("nan"), prompt_attention_mask=m, **kw), "NaN"),
            (lambda: pipe(prompt_embeds=e, prompt_attention_mask=m[:, :2], **kw), "must be a tensor of shape"),
            (lambda: pipe(prompt_embeds=e, prompt_attention_mask=m * 0, **kw), "at least one token per row"),
            (lambda: pipe(prompt_embeds=e, prompt_attention_mask=m, negative_prompt="a green circle",
                          negative_prompt_embeds=ne, negative_prompt_attention_mask=nm, **kw), "not both"),
            (lambda: pipe(prompt_embeds=e, prompt_attention_mask=m, negative_prompt_embeds=ne[:1].repeat(3, 1, 1),
                          negative_prompt_attention_mask=nm[:1].repeat(3, 1), **kw), "3 rows for 2"),
            (lambda: pipe(caps[0], prompt_attention_mask=m, **kw), "goes with prompt_embeds"),
            (lambda: pipe.encode_prompt(caps[0], do_classifier_free_guidance="yes"), "must be True or False")):
        with pytest.raises(ValueError, match=says):
            call()
    # sizes are checked before the negative caption is encoded (the sizes' check needs no text encoder)
    encoded = []
    pipe.text_encoder.encode = lambda captions, _encode=pipe.text_encoder.encode: encoded.append(captions) or _encode(
        captions)
    with pytest.raises(ValueError, match="num_frames"):
        pipe(prompt_embeds=e, prompt_attention_mask=m, negative_prompt=negs, num_frames=7, **kw)
    assert encoded == []


def test_the_video_pipelines_take_prompt_embeds_too(tiny_pipeline_dir, tiny_conditional_dir):
    from vidiff.pipelines.conditional import ImageToVideoPipeline
    from vidiff.pipelines.edit import VideoEditPipeline

    g = lambda s=0: torch.Generator().manual_seed(s)  # noqa: E731
    clips = torch.rand(2, 3, 4, 8, 8, generator=g(5))
    edit, i2v = VideoEditPipeline.from_pretrained(tiny_pipeline_dir), ImageToVideoPipeline.from_pretrained(
        tiny_conditional_dir)
    for pipe, call in ((edit, lambda p, **k: p(video=clips, strength=0.8, num_inference_steps=4, **k)),
                       (i2v, lambda p, **k: p(image=clips[:, :, 0], num_inference_steps=2, **k))):
        e, m, ne, nm = pipe.encode_prompt("a red circle", negative_prompt="a blue square")
        by_text = call(pipe, prompt="a red circle", negative_prompt="a blue square", num_videos_per_prompt=2,
                       generator=[g(s) for s in range(4)])
        by_embeds = call(pipe, prompt_embeds=e, prompt_attention_mask=m, negative_prompt_embeds=ne,
                         negative_prompt_attention_mask=nm, num_videos_per_prompt=2, generator=[g(s) for s in range(4)])
        assert torch.equal(by_embeds.videos, by_text.videos)  # one row for both given videos, two videos each
        assert by_embeds.settings["prompt_embeds"] == [4, *e.shape[1:]] and by_embeds.prompts == [None] * 4
        with pytest.raises(ValueError, match="3 prompt_embeds rows for 2 videos"):
            call(pipe, prompt_embeds=e.repeat(3, 1, 1), prompt_attention_mask=m.repeat(3, 1))
        # one row for both videos with a negative prompt for each, as one caption takes them
        negs = ["a blue square", "a green circle"]
        assert torch.equal(call(pipe, prompt_embeds=e, prompt_attention_mask=m, negative_prompt=negs,
                                generator=[g(0), g(1)]).videos,
                           call(pipe, prompt="a red circle", negative_prompt=negs, generator=[g(0), g(1)]).videos)
        with pytest.raises(ValueError, match="not both"):
            call(pipe, prompt="a red circle", prompt_embeds=e, prompt_attention_mask=m)


def test_the_super_resolution_pipeline_takes_prompt_embeds_negative_prompt_and_timesteps(tiny_cascade_dir):
    # diffusers' upscalers take them; the SR call refused all three (a TypeError)
    g = lambda s=0: torch.Generator().manual_seed(s)  # noqa: E731
    sr = TextToVideoPipeline.from_pretrained(tiny_cascade_dir).super_resolution
    clips = torch.rand(2, 3, 4, 8, 8, generator=g(5))
    e, m, ne, nm = sr.encode_prompt("a red circle", negative_prompt="a blue square")
    kw = {"num_inference_steps": 2, "guidance_scale": 3.0}  # guided, so that the negative prompt counts
    by_text = sr("a red circle", clips, negative_prompt="a blue square", generator=g(), **kw)
    by_embeds = sr(lowres=clips, prompt_embeds=e, prompt_attention_mask=m, negative_prompt_embeds=ne,
                   negative_prompt_attention_mask=nm, generator=g(), **kw)
    assert torch.equal(by_embeds.videos, by_text.videos) and by_embeds.settings["prompt_embeds"] == [2, *e.shape[1:]]
    plain = sr("a red circle", clips, generator=g(), **kw)
    assert not torch.equal(plain.videos, by_text.videos) and by_text.settings["negative_prompt"] == "a blue square"
    seen = []

    def record(p, i, t, kw):
        seen.append(int(t))
        return kw

    given = sr("a red circle", clips, timesteps=[999, 600, 300, 50], sampler="ddpm", generator=g(),
               callback_on_step_end=record)
    assert seen == [999, 600, 300, 50] and given.settings["timesteps"] == [999, 600, 300, 50]
    for kw, says in (({"lowres": None}, "the low-resolution video must be a float tensor"),
                     ({"prompt_embeds": e, "prompt_attention_mask": m}, "not both"),
                     ({"timesteps": [10, 500], "sampler": "ddpm"}, "fall strictly")):
        with pytest.raises(ValueError, match=says):
            sr("a red circle", **{"lowres": clips, **kw})


def test_interrupt_as_in_diffusers(tiny_cascade_dir, tiny_pipeline_dir):
    """diffusers' ``pipe._interrupt``: set in a step callback, the remaining steps are skipped; the call returns what the
    sampler held then (the video of a call whose callback stops it there), records where it stopped, and the next call
    runs in full."""
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    seen = []

    def stop_after(k):
        def fn(p, i, t, kw):
            seen.append(int(t))
            if i == k - 1:
                p._interrupt = True
            return kw
        return fn

    def call(**kw):
        seen.clear()
        return pipe("a red circle", generator=torch.Generator().manual_seed(0), num_inference_steps=6, **kw)

    full = call(callback_on_step_end=stop_after(99))
    grid = list(seen)
    assert len(grid) == 6 and not pipe.interrupt and "interrupted_after_step" not in full.settings
    last = call(callback_on_step_end=stop_after(6))  # set after the last step: nothing skipped, the full result
    assert pipe.interrupt and "interrupted_after_step" not in last.settings and torch.equal(last.videos, full.videos)
    cut = call(callback_on_step_end=stop_after(2))
    assert seen == grid[:2] and pipe.interrupt and cut.settings["interrupted_after_step"] == 2
    held = []  # what the sampler held after step 2 of the full run
    call(callback_on_step_end=lambda p, i, t, kw: held.append(kw["latents"].clone()) or kw)
    assert torch.allclose(cut.videos, ((held[1] + 1) / 2).clamp(0, 1), atol=1e-6)
    again = call()  # each sampling starts with the flag down
    assert not pipe.interrupt and torch.equal(again.videos, full.videos)
    # set from elsewhere (another thread: a web page's stop button), without a step callback
    calls = []
    hook = pipe.unet.register_forward_pre_hook(lambda m, a: calls.append(1) or setattr(
        pipe, "_interrupt", len(calls) == 3 or pipe._interrupt))
    elsewhere = call()
    hook.remove()
    assert len(calls) == 3 and elsewhere.settings["interrupted_after_step"] == 3
    # FreeInit: no further round after the interruption
    pipe.enable_free_init(num_iters=3)
    call(callback_on_step_end=stop_after(3))
    assert len(seen) == 3
    pipe.disable_free_init()
    # a cascade: the base stage stops, the super-resolution stage runs as its own sampling
    cascade = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)
    stages = []

    def base_only_stop(p, i, t, kw):
        stages.append(p is cascade)
        if p is cascade and i == 0:
            p._interrupt = True
        return kw

    out = cascade("a red circle", generator=torch.Generator().manual_seed(0), callback_on_step_end=base_only_stop)
    assert out.settings["interrupted_after_step"] == 1 and "interrupted_after_step" not in out.settings["super_resolution"]
    assert stages.count(True) == 1 and stages.count(False) == 3 and out.videos.shape[-1] == 16
    # the super-resolution stage is guided away from the call's negative caption, as the base stage is
    seen_negative = []
    for stage in (cascade, cascade.super_resolution):
        stage.denoiser = lambda prompts, g, negative="", _own=stage.denoiser, **kw: (
            seen_negative.append((len(prompts), negative)) or _own(prompts, g, negative, **kw))
    out = cascade("a red circle", negative_prompt="a blue square", num_videos_per_prompt=2,
                  generator=torch.Generator().manual_seed(0))
    assert len(seen_negative) == 2 and seen_negative[0] == seen_negative[1], seen_negative
    assert "a blue square" in str(seen_negative[1]) and out.settings["super_resolution"]["negative_prompt"]
