"""Loading the exported graph of a candidate's model without running anything from it.

The export step runs the candidate's code, so the .pt2 file it writes is hostile input.
`torch.export.load` is not safe on such a file (torch 2.13, read in torch/export/__init__.py,
torch/export/pt2_archive/_package.py, torch/_export/serde/serialize.py, torch/export/_unlift.py,
torch/fx/graph.py):

- weights and constants marked `use_pickle` are read with torch.load(weights_only=False), and
  "opaque" constants with pickle.loads: both run arbitrary code;
- the example inputs fall back to torch.load(weights_only=False) when the safe load fails,
  and so does the legacy format that load falls back to when the archive does not parse;
- an archive can carry AOTInductor shared libraries, which load_pt2 loads;
- symbolic shape expressions are parsed with sympy.sympify, which evaluates Python;
- `guards_code` is exec'd when `.module()` builds the module;
- names end up unescaped in the Python that torch.fx generates and execs
  (`getattr(self.blocks, "0")`), and so do parts of the nodes' metadata.

So this module reads the archive's records itself and accepts only plain tensors and a graph
of ATen operators with plain names, fixed shapes and no metadata; it writes those records into
a fresh archive and loads that one, with every torch.load forced to weights_only. It then
turns the graph into its functional form and checks that it is a pure function of its input
and weights: no state that it writes, no random numbers, no operator that reads files or prints.
"""

from __future__ import annotations

import io
import json
import operator
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind
from torch.export.pt2_archive import PT2ArchiveReader, PT2ArchiveWriter


class GraphRejected(Exception):
    """The exported graph breaks a rule; the message says which."""


MODEL_JSON = "models/model.json"
WEIGHTS_CONFIG = "data/weights/model_weights_config.json"
CONSTANTS_CONFIG = "data/constants/model_constants_config.json"
SAMPLE_INPUTS = "data/sample_inputs/model.pt"
# Records torch.export.save writes for one model of plain tensors, and nothing else.
RECORDS = re.compile(
    r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/model\.json|data/sample_inputs/model\.pt"
    r"|data/weights/model_weights_config\.json|data/weights/weight_\d+"
    r"|data/constants/model_constants_config\.json|data/constants/tensor_\d+"
)
WRITER_RECORDS = {".data/version", ".data/serialization_id"}  # the writer adds its own
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # graph values and arguments
FQN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*(\.[A-Za-z0-9][A-Za-z0-9_]*)*")  # no dunders, no quotes
TARGET = re.compile(r"torch\.ops\.aten\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+")
PLAIN = re.compile(r"[A-Za-z0-9_.+]*")  # every other string: versions, devices, kinds
MODE = re.compile(r"[A-Za-z0-9_.,\->]*")  # string arguments: modes, einsum equations
# String arguments that select a mode of an operator; any other (a file name, a message to
# print) marks an operator with effects outside the computation.
MODE_ARGUMENTS = {
    "approximate",
    "rounding_mode",
    "equation",
    "reduce",
    "side",
    "indexing",
    "padding",
    "mode",
    "pad_mode",
    "norm",
    "interpolation",
    "ord",
    "driver",
    "UPLO",
    "assert_msg",
}
# Argument kinds a fixed-shape graph of ATen operators has no use for: subgraphs, operators
# and objects passed as values, and symbolic numbers (which are parsed with sympy).
FORBIDDEN_ARGUMENTS = {
    "as_graph",
    "as_operator",
    "as_custom_obj",
    "as_sym_int",
    "as_sym_ints",
    "as_sym_bool",
    "as_sym_bools",
    "as_sym_float",
    "as_sym_floats",
}
LEAF: dict[str, Any] = {"type": None, "context": None, "children_spec": []}
# The calling convention of model(idx) -> logits: one positional tensor in, one tensor out.
IN_SPEC = [
    1,
    {
        "type": "builtins.tuple",
        "context": "null",
        "children_spec": [
            {"type": "builtins.tuple", "context": "null", "children_spec": [LEAF]},
            {"type": "builtins.dict", "context": "[]", "children_spec": []},
        ],
    },
]
OUT_SPEC = [1, LEAF]


# --- the archive, checked before torch parses any of it ---------------------------------


def _tensor_config(raw: bytes, prefix: str, records: dict[str, bytes], folder: str) -> None:
    """Weights or constants: each entry a plain tensor stored as raw bytes, under a plain name."""
    config = json.loads(raw)
    if set(config) != {"config"}:
        raise GraphRejected(f"unexpected fields in {folder} config")
    for fqn, entry in config["config"].items():
        if not FQN.fullmatch(fqn):
            raise GraphRejected(f"tensor name {fqn!r} is not a plain dotted name")
        path = str(entry.get("path_name", ""))
        if entry.get("use_pickle") is not False or entry.get("tensor_meta") is None:
            raise GraphRejected(f"{fqn} is not stored as a plain tensor (pickled objects run code)")
        if not re.fullmatch(prefix + r"\d+", path) or folder + path not in records:
            raise GraphRejected(f"{fqn} points at a missing or unexpected record {path!r}")


def _walk(value: Any, key: str = "") -> None:
    """Every string in the graph is a plain name, a plain value or an operator mode."""
    if isinstance(value, dict):
        if "as_expr" in value or "expr_str" in value:
            raise GraphRejected("the graph has symbolic shapes; export at the fixed shape")
        for k, v in value.items():
            if not PLAIN.fullmatch(k):
                raise GraphRejected(f"unexpected name {k[:80]!r} in the graph")
            if k in FORBIDDEN_ARGUMENTS:
                raise GraphRejected(f"the graph passes {k[3:]} arguments (only tensors, values)")
            if k in ("in_spec", "out_spec"):
                expected = IN_SPEC if k == "in_spec" else OUT_SPEC
                if not isinstance(v, str) or json.loads(v) != expected:
                    raise GraphRejected("the model must take one tensor (idx) and return one")
            else:
                _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            _walk(v, key)
    elif isinstance(value, str):
        pattern = {"target": TARGET, "name": NAME, "as_string": MODE}.get(key, PLAIN)
        if key in ("fqn", "parameter_name", "buffer_name", "tensor_constant_name"):
            pattern = FQN if value else PLAIN
        if not pattern.fullmatch(value):
            what = "operator" if key == "target" else "string"
            raise GraphRejected(f"unexpected {what} {value[:80]!r} in the graph ({key})")


def _sanitized_model(raw: bytes) -> bytes:
    """model.json without node metadata, after checking everything left in it."""
    program = json.loads(raw)
    if program.get("guards_code") or program.get("range_constraints"):
        raise GraphRejected("the graph has guards or shape constraints; export at the fixed shape")
    module = program["graph_module"]
    graph = module["graph"]
    for field in ("sym_int_values", "sym_bool_values", "sym_float_values", "custom_obj_values"):
        if graph.get(field):
            raise GraphRejected(f"the graph has {field}: only tensors may flow through it")
    if module.get("metadata"):
        raise GraphRejected("the graph module carries metadata")
    # Stack traces and module stacks are only for reading; torch.fx prints them into code.
    for node in graph["nodes"]:
        node["metadata"] = {}
    _walk(program)
    return json.dumps(program).encode()


def _sanitized_archive(src: Path, dst: io.BytesIO) -> None:
    with PT2ArchiveReader(str(src)) as reader:
        records = {name: reader.read_bytes(name) for name in reader.get_file_names()}
    unexpected = sorted(n for n in records if not RECORDS.fullmatch(n))
    if unexpected:
        raise GraphRejected(f"unexpected records in the archive: {', '.join(unexpected[:5])}")
    for name in (MODEL_JSON, WEIGHTS_CONFIG, CONSTANTS_CONFIG, SAMPLE_INPUTS):
        if name not in records:
            raise GraphRejected(f"the archive has no {name}")
    try:  # the example inputs are a pickle: only plain tensors and containers may be in it
        torch.load(io.BytesIO(records[SAMPLE_INPUTS]), map_location="cpu", weights_only=True)
    except Exception as e:  # an unpickler's refusal comes in many types
        raise GraphRejected(f"the example inputs are not plain tensors ({e})") from None
    _tensor_config(records[WEIGHTS_CONFIG], "weight_", records, "data/weights/")
    _tensor_config(records[CONSTANTS_CONFIG], "tensor_", records, "data/constants/")
    records[MODEL_JSON] = _sanitized_model(records[MODEL_JSON])
    with PT2ArchiveWriter(dst) as writer:
        for name, data in records.items():
            if name not in WRITER_RECORDS:
                writer.write_bytes(name, data)


# --- the loaded graph: a pure function of idx and the weights ---------------------------


def _draws_random(op: torch._ops.OpOverload, node: torch.fx.Node) -> bool:
    if torch.Tag.nondeterministic_seeded not in op.tags:
        return False
    # Attention and dropout are tagged for their dropout, which eval mode turns off.
    args = {a.name: a.default_value for a in op._schema.arguments if a.has_default_value()}
    args.update({a.name: v for a, v in zip(op._schema.arguments, node.args, strict=False)})
    args.update(node.kwargs)
    if "dropout_p" in args:
        return args["dropout_p"] != 0
    if "train" in args:
        return args["train"] is not False
    return True


def _check_program(ep: ExportedProgram, functional: bool = True) -> None:
    """The rules; `functional=False` before the graph is made functional (retracing it runs
    each operator's shape function, so the operators are checked before that too)."""
    kinds = [spec.kind for spec in ep.graph_signature.input_specs]
    allowed = {InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR}
    if kinds.count(InputKind.USER_INPUT) != 1 or not set(kinds) <= allowed | {InputKind.USER_INPUT}:
        raise GraphRejected("the graph's inputs must be idx, weights, buffers and constants")
    outputs = [spec.kind for spec in ep.graph_signature.output_specs]
    if functional and outputs != [OutputKind.USER_OUTPUT]:
        # Anything else is state written back between calls (a counter, a cache).
        raise GraphRejected("the graph must return the logits only and mutate no state")
    for node in ep.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        if node.op != "call_function":
            raise GraphRejected(f"the graph may only call operators, not {node.op}")
        if node.target is operator.getitem:
            continue
        op = node.target
        if not isinstance(op, torch._ops.OpOverload) or op.namespace != "aten":
            raise GraphRejected(f"{op} is not an ATen operator")
        schema = op._schema
        if functional and schema.is_mutable:  # none are left in the functional form
            raise GraphRejected(f"{op} writes to its inputs; the model must keep no state")
        if _draws_random(op, node):
            raise GraphRejected(f"{op} draws random numbers; eval-mode outputs must be fixed")
        for arg in schema.arguments:
            if "str" in str(arg.type) and arg.name not in MODE_ARGUMENTS:
                raise GraphRejected(f"{op} takes a string {arg.name!r} (files, printing)")


def free_values(ep: ExportedProgram) -> int:
    """Numbers the graph holds besides the checkpoint's weights: constants, non-persistent
    buffers, the literals in operator arguments, and one per operator call (the structure
    of the graph can carry information too)."""
    count = sum(t.numel() for t in ep.constants.values() if isinstance(t, torch.Tensor))
    for node in ep.graph.nodes:
        leaves = torch.utils._pytree.tree_leaves((node.args, node.kwargs))
        count += 1 + sum(isinstance(x, (int, float, bool)) for x in leaves)
    return count


def load_graph(path: Path) -> ExportedProgram:
    """The checked program, or GraphRejected."""
    clean = io.BytesIO()  # in memory: the evaluate step need not have a writable folder
    try:
        _sanitized_archive(path, clean)
    except GraphRejected:
        raise
    except Exception as e:  # whatever does not parse is refused
        raise GraphRejected(f"not a readable torch.export archive ({e})") from None
    clean.seek(0)
    # Belt and braces: whatever torch.load the loader still reaches stays weights-only.
    saved = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        ep = torch.export.load(clean)
        _check_program(ep, functional=False)
        # Functional form: in-place operators on intermediate values (`x += y`) become plain
        # ones, and writes to buffers or inputs show up as extra outputs, which are refused.
        with warnings.catch_warnings():  # torch's own deprecation notices, not ours
            warnings.simplefilter("ignore", FutureWarning)
            ep = ep.run_decompositions({})
    except GraphRejected:
        raise
    except Exception as e:  # any failure to load is a rejection
        raise GraphRejected(f"could not load the graph ({type(e).__name__}: {e})") from None
    finally:
        if saved is None:
            del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = saved
    _check_program(ep)
    return ep
