"""The Shapes benchmark in one package (docs/shapes-benchmark.md): scenes and renders (:mod:`.scenes`), the
lenient and strict readers (:mod:`.reader`, :mod:`.strict_reader`), the evaluation suites (:mod:`.suites`), the
reader as a metric (:mod:`.scores`, ``ShapesScore``) and the feature network of its FVD / IS (:mod:`.encoder`).
Generic code (``vidiff.metrics``, ``vidiff.data``) does not depend on it; it depends on them."""
