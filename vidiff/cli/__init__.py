"""``vidiff``: the command line. Heavy libraries are imported inside the commands, so start-up is quick.

Bad input -> one line on stderr naming the problem and what is allowed, exit code 2, no traceback.
"""

from __future__ import annotations

import os
import sys

from vidiff.cli.common import default_model_path  # noqa: F401  (used by tests and benchmarks)
from vidiff.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure is one line on stderr: bad input and OS errors (a full disk, a
    permission) exit 2, an interruption 130, anything else is a bug in vidiff and exits 1 (set VIDIFF_DEBUG=1
    for its traceback)."""
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    formatwarning = warnings.formatwarning
    warnings.formatwarning = lambda message, *a, **k: f"vidiff: warning: {message}\n"  # one line, no source
    try:
        return args.func(args)
    except ValueError as e:
        return _fail(str(e), 2)
    except OSError as e:
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        return _fail(f"cannot read or write{where}: {e.strerror or e}", 2)
    except MemoryError:
        return _fail("not enough memory for this size; lower --frames, --size or --window", 2)
    except KeyboardInterrupt:
        print("vidiff: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if type(e).__name__ == "OutOfMemoryError":  # torch's (CUDA) out of memory; torch is not imported here
            first = str(e).split(".")[0]
            return _fail(f"out of memory on the GPU ({first[:120]}); lower --frames, --size or --window, use --dtype "
                         f"bf16, or run on the CPU with --device cpu", 2)
        if os.environ.get("VIDIFF_DEBUG"):
            raise
        return _fail(f"internal error, please report it ({type(e).__name__}: {str(e)[:200]}); "
                     "set VIDIFF_DEBUG=1 for the traceback", 1)
    finally:
        warnings.formatwarning = formatwarning


def _fail(message: str, code: int) -> int:
    print(f"vidiff: error: {' '.join(message.split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
