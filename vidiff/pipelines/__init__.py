"""The pipelines, one per task (text-to-video, conditional, super-resolution; :mod:`vidiff.tasks`) plus SDEdit."""
