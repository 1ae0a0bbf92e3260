"""Calling the engine's compiled graphs without Grappler's rewrites.

TensorFlow optimises a function's graph with Grappler the first time the
function is called. On the engine's step graphs those rewrites took about
0.2 s of the first call (0.35 s against 0.17 s for the ``make_friedman1``
network, 0.96 s against 0.75 s for the digits network, on a 2-core CPU) and
changed the time per step by less than the run-to-run noise, so the graphs
are called with Grappler's meta-optimizer off. The options are set for the
calling thread only, and restored after every call; the runtime's own graph
passes (lowering of loops and conditionals, placement) still run.
"""

from __future__ import annotations

#: Whether the compiled graphs skip Grappler (set to ``False`` to compare).
SKIP_GRAPPLER = True

try:  # internal TensorFlow modules; without them graphs are called plainly
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context as _context
except ImportError:  # pragma: no cover
    _context = None

_LEAN: dict = {}


def _lean_options(options):
    key = (options.config_proto_serialized, options.executor_type)
    lean = _LEAN.get(key)
    if lean is None:
        config = config_pb2.ConfigProto()
        config.ParseFromString(options.config_proto_serialized)
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        lean = _context.FunctionCallOptions(
            executor_type=options.executor_type, config_proto=config
        )
        _LEAN[key] = lean
    return lean


def call(concrete, args):
    """``concrete(*args)``, with Grappler off when :data:`SKIP_GRAPPLER`."""
    if not SKIP_GRAPPLER or _context is None:
        return concrete(*args)
    ctx = _context.context()
    saved = ctx.function_call_options
    ctx.function_call_options = _lean_options(saved)
    try:
        return concrete(*args)
    finally:
        ctx.function_call_options = saved
