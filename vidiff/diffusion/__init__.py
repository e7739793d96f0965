"""Diffusion: schedules and losses, the denoising loop and guidance, MultiDiffusion."""

SAMPLERS = ("ddpm", "ddim", "dpm++")  # the samplers by name (vidiff.diffusion.schedule.make_scheduler); no torch here
