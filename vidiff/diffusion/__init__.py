"""Diffusion: schedules and losses, the denoising loop and guidance, MultiDiffusion."""

# the samplers by name (vidiff.diffusion.schedule.make_scheduler); no torch here. "dpm++-sde": DPM-Solver++(2M) SDE,
# fresh noise at every step (needs a generator for a reproducible clip)
SAMPLERS = ("ddpm", "ddim", "dpm++", "dpm++-sde")
