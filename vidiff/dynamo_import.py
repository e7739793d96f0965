"""Keep diffusers' import from importing ``torch._dynamo``, which nothing on vidiff's sampling path uses.

``diffusers.utils.torch_utils`` runs ``from torch._dynamo import allow_in_graph as maybe_allow_in_graph`` when it is
imported, for a class decorator that matters only under ``torch.compile``. Importing ``torch._dynamo`` takes 1.3 s
on a 2-core AMD EPYC and 1.5-1.8 s on a 2-core Intel Xeon (``python -X importtime``): a sixth of a default clip
made cold (issue 20, item 8), and no other import or call of ``vidiff generate`` needs it. No option of diffusers
or torch skips it, so it is done here, by hand: while that one module executes, a stand-in ``torch._dynamo``
records what ``allow_in_graph`` is given and returns it unchanged; the stand-in is gone when the module is done.
When anything imports the real ``torch._dynamo`` later (``torch.compile`` does, before it traces), the recorded
classes are handed to the real ``allow_in_graph``, so compiled diffusers models are treated as before. Any other use
of the stand-in while it is in place loads the real module. Where ``torch._dynamo`` is already imported (import it
before vidiff to opt out), nothing is changed.

The same hook keeps ``diffusers.quantizers.pipe_quant_config`` from importing transformers (0.45 s on the EPYC, regex
included) for a name it uses only in a type annotation: while that module executes, a stand-in
``transformers.utils.quantization_config`` hands it a class that loads transformers' real ``QuantizationConfigMixin``
at its first ``isinstance`` / ``issubclass`` check. A default clip, whose captions come from the folder's text cache,
then never imports transformers; a text encoder or anything else that needs it imports the real package as before.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types

_TARGET = "diffusers.utils.torch_utils"
_DYNAMO = "torch._dynamo"
_QUANT_TARGET = "diffusers.quantizers.pipe_quant_config"
_QUANT = "transformers.utils.quantization_config"
_pending: list = []  # what diffusers decorated with allow_in_graph before the real torch._dynamo was loaded


def _deferred_allow_in_graph(obj):
    real = sys.modules.get(_DYNAMO)
    if real is not None and not isinstance(real, _StandIn):  # loaded since: diffusers' decorator as it was
        return real.allow_in_graph(obj)
    _pending.append(obj)
    return obj


class _StandIn(types.ModuleType):
    """``torch._dynamo`` while diffusers' torch_utils executes: ``allow_in_graph`` deferred, anything else real."""

    allow_in_graph = staticmethod(_deferred_allow_in_graph)

    def __getattr__(self, name):
        if name.startswith("__"):  # the import system asks for __path__, __spec__, ...: not the real module's
            raise AttributeError(name)
        _drop(self)
        import torch._dynamo

        return getattr(torch._dynamo, name)


def _drop(stand_in: _StandIn) -> None:
    if sys.modules.get(_DYNAMO) is stand_in:
        del sys.modules[_DYNAMO]
    torch = sys.modules.get("torch")
    if torch is not None and torch.__dict__.get("_dynamo") is stand_in:
        del torch.__dict__["_dynamo"]


def _real_quant_mixin():
    from transformers.utils.quantization_config import QuantizationConfigMixin

    return QuantizationConfigMixin


class _DeferredCheck(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, _real_quant_mixin())

    def __subclasscheck__(cls, sub) -> bool:
        return issubclass(sub, _real_quant_mixin())


class TransformersQuantConfigMixin(metaclass=_DeferredCheck):
    """What diffusers' pipe_quant_config binds in place of transformers' ``QuantizationConfigMixin``: the real class
    answers every isinstance / issubclass check, imported at the first one."""


def _exec_without_transformers(loader, module) -> None:
    """Run diffusers' pipe_quant_config with the stand-in module in place of transformers' quantization_config."""
    import importlib.util

    if "transformers" in sys.modules or importlib.util.find_spec("transformers") is None:
        loader.exec_module(module)  # already paid for, or diffusers' own fallback class applies
        return
    stand_in = types.ModuleType(_QUANT)
    stand_in.QuantizationConfigMixin = TransformersQuantConfigMixin
    sys.modules[_QUANT] = stand_in
    try:
        loader.exec_module(module)
    finally:
        if sys.modules.get(_QUANT) is stand_in:
            del sys.modules[_QUANT]


class _Loader(importlib.abc.Loader):
    """The module's own loader, with the stand-in around diffusers' torch_utils and the recorded classes handed to
    the real ``allow_in_graph`` after ``torch._dynamo`` executes."""

    def __init__(self, loader, name: str):
        self.loader, self.name = loader, name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = self.loader  # inspect and linecache read the source through the real loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        if self.name == _QUANT_TARGET:
            _exec_without_transformers(self.loader, module)
            return
        if self.name == _DYNAMO:
            self.loader.exec_module(module)
            while _pending:
                module.allow_in_graph(_pending.pop(0))
            return
        if _DYNAMO in sys.modules:
            self.loader.exec_module(module)
            return
        importlib.import_module("torch")  # the parent package, before the stand-in takes its child's name

        stand_in = _StandIn(_DYNAMO)
        sys.modules[_DYNAMO] = stand_in
        try:
            self.loader.exec_module(module)
        finally:
            _drop(stand_in)

    def __getattr__(self, name):
        return getattr(self.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    _local = threading.local()

    def find_spec(self, name, path, target=None):
        if name not in (_TARGET, _DYNAMO, _QUANT_TARGET) or (name == _DYNAMO and not _pending):
            return None
        if getattr(self._local, "busy", False):
            return None
        self._local.busy = True
        try:
            spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        finally:
            self._local.busy = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, name)
        return spec


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once); a no-op where diffusers' torch_utils is already imported."""
    if _TARGET in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
