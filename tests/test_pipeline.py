import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from vidiff.pipelines.text_to_video import TextToVideoPipeline


def test_round_trip_and_output(tiny_pipeline_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    out = pipe("a red circle moving left", generator=torch.Generator().manual_seed(0))
    assert out.videos.shape == (1, 3, 4, 8, 8)
    assert out.frames.dtype == np.float32 and out.frames.shape == (1, 4, 8, 8, 3)  # diffusers' "np" output
    assert out.to_uint8().dtype == np.uint8 and np.array_equal(out.to_uint8(), (out.frames * 255).round())
    assert 0 <= out.videos.min() and out.videos.max() <= 1


def test_a_batch_of_prompts_equals_the_prompts_one_by_one(tiny_pipeline_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    noise = torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    both = pipe(["a red circle moving left", "a cyan square growing"], latents=noise).videos
    one = pipe("a cyan square growing", latents=noise[1:]).videos
    assert both.shape[0] == 2 and torch.allclose(both[1], one[0], atol=1e-4)


def test_same_seed_same_video_twice_in_one_process(tiny_pipeline_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    a = pipe("a cyan square moving up", generator=torch.Generator().manual_seed(3)).frames
    b = pipe("a cyan square moving up", generator=torch.Generator().manual_seed(3)).frames
    c = pipe("a cyan square moving up", generator=torch.Generator().manual_seed(4)).frames
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_same_seed_same_video_in_another_process(tiny_pipeline_dir):
    code = (
        "import sys, torch, numpy as np; from vidiff.pipelines.text_to_video import TextToVideoPipeline;"
        f"p = TextToVideoPipeline.from_pretrained({str(tiny_pipeline_dir)!r});"
        "v = p('a cyan square moving up', generator=torch.Generator().manual_seed(3)).frames;"
        "sys.stdout.write(v.tobytes().hex())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    here = pipe("a cyan square moving up", generator=torch.Generator().manual_seed(3)).frames
    assert other == here.tobytes().hex()


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "dpm++"])
def test_every_sampler_runs(tiny_pipeline_dir, sampler):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    out = pipe("a red circle moving left", sampler=sampler, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.videos).all()


def test_image_generation_with_one_frame(tiny_pipeline_dir):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    assert pipe("a red circle", num_frames=1).videos.shape == (1, 3, 1, 8, 8)


@pytest.mark.parametrize("kwargs,match", [
    (dict(prompt=""), "caption is empty"),
    (dict(prompt="a red circle", num_frames=3), "num_frames"),
    (dict(prompt="a red circle", height=10), "multiples"),
    (dict(prompt="a red circle", num_inference_steps=0), "num_inference_steps"),
    (dict(prompt="a red circle", sampler="heun"), "allowed"),
])
def test_bad_inputs_raise_one_line_value_errors(tiny_pipeline_dir, kwargs, match):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    with pytest.raises(ValueError, match=match) as e:
        pipe(**kwargs)
    assert "\n" not in str(e.value)


def test_truncated_and_foreign_weights_are_clear_errors(tiny_pipeline_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_pipeline_dir, bad)
    weights = next((bad / "unet").glob("*.safetensors"))
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot load"):
        TextToVideoPipeline.from_pretrained(bad)
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="cannot load"):
        TextToVideoPipeline.from_pretrained(bad)
    from safetensors.torch import save_file
    save_file({"something.else": torch.zeros(3)}, str(weights))  # foreign keys
    with pytest.raises(ValueError, match="cannot load"):
        TextToVideoPipeline.from_pretrained(bad)
    with pytest.raises(ValueError, match="does not exist"):
        TextToVideoPipeline.from_pretrained(tmp_path / "nothing")


def test_half_precision_save(tiny_pipeline_dir, tmp_path, tiny_text_encoder):
    pipe = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    pipe.save_pretrained(tmp_path / "half", half=True)
    meta = json.loads((tmp_path / "half" / "vidiff_pipeline.json").read_text())
    assert meta["defaults"]["num_frames"] == 4
    half = TextToVideoPipeline.from_pretrained(tmp_path / "half")
    assert next(half.unet.parameters()).dtype == torch.float32  # loaded as float32 by default
    a = pipe("a red circle moving left", generator=torch.Generator().manual_seed(0)).videos
    b = half("a red circle moving left", generator=torch.Generator().manual_seed(0)).videos
    assert (a - b).abs().max() < 0.05


def test_embedded_names_resolve_in_the_library(tmp_path):
    """`from_pretrained("default")` and `.with_style("style-outlined", a)` as the CLI's names; a missing folder or
    a folder that is not a pipeline is a ValueError naming the choices."""
    from vidiff.pipelines.conditional import ImageToVideoPipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.registry import weights_dir

    pipe = TextToVideoPipeline.from_pretrained("default")
    assert pipe.path == weights_dir() / "default"
    assert pipe.with_style("style-outlined", 0.5).unet is not pipe.unet
    assert ImageToVideoPipeline.from_pretrained("conditional").condition_guidance() == 8.0
    with pytest.raises(ValueError, match="one of: default, conditional"):
        TextToVideoPipeline.from_pretrained(tmp_path / "nothing")
    with pytest.raises(ValueError, match="not a vidiff pipeline folder"):
        TextToVideoPipeline.from_pretrained(tmp_path)


def test_super_resolution_windows_are_checked_before_the_base_stage_runs(tiny_cascade_dir, monkeypatch):
    """A window shorter than the SSR stage's own stride was refused only once the base clip was made (25 s of a
    cold CLI run), in a message naming window and stride, arguments the caller had not used; ssr_steps=0 read as
    num_inference_steps."""
    pipe = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)  # its SSR stage: window 4, stride 2

    def no_sampling(*a, **k):
        raise AssertionError("the base stage ran before the check")

    monkeypatch.setattr(pipe, "sample", no_sampling)
    for kwargs, says in (({"ssr_window": 1}, "ssr_window 1 is shorter than the super-resolution model's own stride "
                                            "(2 frames); give ssr_stride of at most 1"),
                         ({"ssr_stride": 6}, "ssr_stride (6) must not exceed the super-resolution model's own window"),
                         ({"ssr_window": 2, "ssr_stride": 3}, "ssr_stride (3) must not exceed ssr_window (2)"),
                         ({"ssr_window": 0}, "ssr_window must be at least 1"),
                         ({"ssr_window": 2.5}, "ssr_window must be an integer"),
                         ({"ssr_steps": 0}, "ssr_steps must be in 1..1000"),
                         ({"window": 3}, "window=3: each window is a clip the model denoises")):
        with pytest.raises(ValueError, match=says.replace("(", "\\(").replace(")", "\\)")):
            pipe("a red circle", **kwargs)
    monkeypatch.undo()
    out = pipe("a red circle", ssr_window=2, generator=torch.Generator().manual_seed(0))
    assert out.settings["super_resolution"]["window"] == 2 and out.settings["super_resolution"]["stride"] == 2


def test_a_saved_copy_names_the_same_super_resolution_stage(tmp_path, tiny_cascade_dir, tiny_ssr_dir):
    """The folder names its stage relative to itself ('../ssr'): a copy saved elsewhere wrote the same words, which
    named a missing folder there (or a stranger's of that name)."""
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(tiny_cascade_dir)
    pipe.save_pretrained(tmp_path / "a" / "b" / "copy")
    copy = TextToVideoPipeline.from_pretrained(tmp_path / "a" / "b" / "copy")
    assert copy.super_resolution.path.resolve() == tiny_ssr_dir.resolve()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_every_pipeline_runs_with_its_weights_cast_as_diffusers_pipelines_do(dtype, tiny_cascade_dir,
                                                                              tiny_conditional_dir, tiny_ssr_dir):
    """from_pretrained(torch_dtype=torch.float16) and pipe.to(torch.bfloat16), the diffusers idiom, ended in
    'mat1 and mat2 must have the same dtype' at the first step (the sampler's fp32 state and the timestep
    embedding's fp32 sinusoids met half-precision layers). The sampler keeps fp32; the clip is the fp32 one to
    the precision's tolerance."""
    from vidiff.pipelines.conditional import ImageToVideoPipeline
    from vidiff.pipelines.edit import VideoEditPipeline
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    g = torch.Generator().manual_seed(3)
    clip, image = torch.rand(1, 3, 4, 8, 8, generator=g), torch.rand(1, 3, 8, 8, generator=g)
    calls = {
        "text-to-video + SSR": (TextToVideoPipeline, tiny_cascade_dir, ()),
        "image-to-video": (ImageToVideoPipeline, tiny_conditional_dir, (image,)),
        "SDEdit": (VideoEditPipeline, tiny_cascade_dir, (clip,)),
        "super-resolution": (SuperResolutionPipeline, tiny_ssr_dir, (clip,)),
    }
    for name, (cls, folder, args) in calls.items():
        def run(torch_dtype):
            pipe = cls.from_pretrained(folder, torch_dtype=torch_dtype)
            return pipe("a red circle", *args, num_inference_steps=6,  # 6: an edit's steps above t = 0
                        generator=torch.Generator().manual_seed(0)).videos

        ref, cast = run(torch.float32), run(dtype)
        assert cast.dtype == torch.float32 and (cast - ref).abs().max() < 0.05, name


def test_an_edit_with_no_step_above_t0_is_refused_and_its_start_is_recorded(tiny_cascade_dir):
    """SDEdit starts at the first step of the sampler's grid at or below strength x T: 3 DPM++ steps on this grid
    (999, 942, 0) left only t = 0 for strength 0.6, and the "edit" gave the input back unchanged without a word."""
    from vidiff.pipelines.edit import VideoEditPipeline

    pipe = VideoEditPipeline.from_pretrained(tiny_cascade_dir, base_only=True)
    clip = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"strength 0.6 with 3 steps leaves no denoising step above t = 0 .*its "
                                         r"steps: 999, 942, 0"):
        pipe("a blue square", clip, strength=0.6, num_inference_steps=3)
    out = pipe("a blue square", clip, strength=0.6, num_inference_steps=6, generator=torch.Generator().manual_seed(0))
    assert 0 < out.settings["start_timestep"] <= 600 and not torch.allclose(out.videos, clip, atol=1e-3)
