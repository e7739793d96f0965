"""vidiff: text-to-video diffusion (Lumiere's Space-Time U-Net and the designs around it).

Top-level names are imported lazily so that ``vidiff --help`` starts without importing torch.
"""

__version__ = "0.1.0"

from vidiff import dynamo_import as _dynamo_import  # noqa: E402  (diffusers' import without torch._dynamo: 1.3-1.8 s)

_dynamo_import.install()

_LAZY = {
    "TextToVideoPipeline": "vidiff.pipelines.text_to_video",
    "SuperResolutionPipeline": "vidiff.pipelines.super_resolution",
    "ImageToVideoPipeline": "vidiff.pipelines.conditional",
    "VideoInpaintPipeline": "vidiff.pipelines.conditional",
    "CinemagraphPipeline": "vidiff.pipelines.conditional",
    "VideoEditPipeline": "vidiff.pipelines.edit",
    "VideoUNet": "vidiff.models.unet",
    "build_unet": "vidiff.models.unet",
    "TextEncoder": "vidiff.conditioning.text",
    "TextToVideoZeroPipeline": "vidiff.pipelines.zero_shot",
    # what `vidiff train / evaluate / inflate` run, callable from Python with the same defaults
    "load_config": "vidiff.training.config",
    "train": "vidiff.training.trainer",
    "evaluate_model": "vidiff.evaluation.report",
    "evaluate_folders": "vidiff.evaluation.report",
    "inflate": "vidiff.pipelines.inflate",
}
__all__ = sorted(_LAZY) + ["versions"]


def versions() -> dict:
    """The versions that decide an output, for the settings saved beside it."""
    import sys
    from importlib.metadata import version

    import torch

    return {"vidiff": __version__, "torch": torch.__version__, "diffusers": version("diffusers"),
            "python": sys.version.split()[0]}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vidiff' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
