"""Which file and column holds each role (predictions, labels, weights, groups), and
what shape the evaluation has: :func:`resolve_fields` and :class:`Layout`.

The same resolution serves :func:`fastloss.evaluate` (files read by
:mod:`fastloss.evaluation.chunks`) and ``fastloss.dask.evaluate_files`` (the same files
opened as dask collections), so both name the same columns and raise the same errors.
"""

import fnmatch
import os
from dataclasses import dataclass

from fastloss.evaluation.readers import (
    InputError,
    MemArray,
    NpyFile,
    NpzMember,
    Table,
    csv_problem,
    detect_format,
    npz_members,
)
from fastloss.evaluation.safetensors import SafetensorsTensor, tensor_names

__all__ = ["LABEL_NAMES", "PRED_NAMES", "ROLES", "Field", "InputFile", "Layout", "is_list",
           "label_tail", "resolve_fields"]

PRED_NAMES = ("y_pred", "pred", "preds", "prediction", "predictions", "logits", "probs",
              "probabilities", "scores", "score", "output")
LABEL_NAMES = ("y_true", "label", "labels", "target", "targets", "y")

ROLES = ("pred", "label", "weight", "group")



class Field:
    """One role read from one file: a whole array, or columns of a table."""

    def __init__(self, role, file, src, columns=None):
        self.role, self.file, self.src, self.columns = role, file, src, columns

    @property
    def where(self):
        if self.columns is None:
            return self.file.path if not hasattr(self.src, "member") else \
                f"{self.file.path}[{self.src.member}]"
        cols = self.columns
        return f"{self.file.path}[{cols[0] if len(cols) == 1 else cols[0] + '..' + cols[-1]}]"


class InputFile:
    """A file given on the command line: an array, an .npz archive or a table."""

    def __init__(self, path, csv_dtypes=None, role=None):
        self.array = self.table = None
        self.members = ()
        if not isinstance(path, (str, os.PathLike)):
            self.path, self.fmt = f"<{role} array>", "memory"
            self.array = MemArray(path, self.path, allow_object=role == "groups")
            return
        self.path = str(path)
        if not os.path.exists(self.path):
            if os.path.islink(self.path):  # dangling, or a loop of links
                try:
                    os.stat(self.path)
                except OSError as exc:
                    raise InputError(f"{self.path}: is a symbolic link to "
                                     f"{os.readlink(self.path)!r} that leads to no file "
                                     f"({exc.strerror})") from None
            raise InputError(f"{self.path}: no such file")
        self.fmt = detect_format(self.path)
        if self.fmt == "npy":
            self.array = NpyFile(self.path)
        elif self.fmt == "npz":
            self.members = tuple(npz_members(self.path))
        elif self.fmt == "safetensors":
            self.members = tuple(tensor_names(self.path))
        else:
            self.table = Table(self.path, self.fmt, csv_dtypes)

    def member(self, name):
        """Member ``name`` of an .npz archive or a safetensors file."""
        if self.fmt == "safetensors":
            return SafetensorsTensor(self.path, name)
        return NpzMember(self.path, name)

    @property
    def columns(self):
        if self.table is not None:
            return self.table.columns
        return self.members

    def has(self, name):
        return name in self.columns

    def fingerprint(self):
        if self.fmt == "memory":
            return {"array": self.path, "shape": list(self.array.shape),
                    "dtype": self.array.dtype.str}
        st = os.stat(self.path)
        return {"path": os.path.abspath(self.path), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns}


def is_list(table, name):
    pa = table.pa
    t = table.field_type(name)
    return pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def _numeric(table, name):
    return _numeric_type(table.pa, table.field_type(name))


def _numeric_type(pa, t):
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _pred_field(f, spec, taken):
    """The prediction columns of file ``f`` (``spec``: a name, names, a glob or None)."""
    if f.array is not None:
        return Field("pred", f, f.array)
    names = f.columns
    if isinstance(spec, str) and any(ch in spec for ch in "*?["):
        cols = [c for c in names if fnmatch.fnmatchcase(c, spec)]
        if not cols:
            raise InputError(f"{f.path}: no column matches {spec!r} (columns: {_short(names)})")
        spec = _class_columns(cols) or cols  # numbered columns in number order
    if isinstance(spec, str):
        spec = [spec]
    if spec is None:
        hit = [c for c in PRED_NAMES if c in names]
        if f.table is None:
            if hit:
                spec = [hit[0]]
            elif len(names) == 1:
                spec = [names[0]]
            else:
                raise InputError(f"{f.path}: which member holds the predictions? none is named "
                                 f"{'/'.join(PRED_NAMES[:6])}...; give --pred-column "
                                 f"(members: {_short(names)})")
        else:
            lists = [c for c in names if is_list(f.table, c)]
            if hit and (is_list(f.table, hit[0]) or len(hit) == 1):
                spec = [hit[0]]
            elif len(lists) == 1:
                spec = lists
            else:
                spec = []
                if f.fmt == "csv":
                    # a CSV column's type is guessed from its first rows: one bad cell makes
                    # p2 a text column, which must not leave p0, p1 as the classes; say
                    # where that cell is
                    spec = _class_columns([c for c in names if c not in taken])
                    _raise_bad_csv_cells(f, [c for c in spec if not _numeric(f.table, c)])
                spec = spec or _class_columns([c for c in names if c not in taken
                                               and _numeric(f.table, c)])
                if not spec:
                    raise InputError(f"{f.path}: which columns hold the predictions? none is "
                                     f"named {'/'.join(PRED_NAMES[:6])}..., there is no list "
                                     "column and no numbered columns like p0, p1, ...; give "
                                     f"--pred-column (columns: {_short(names)})")
    missing = [c for c in spec if c not in names]
    if missing:
        raise InputError(f"{f.path}: has no column {missing[0]!r} (columns: {_short(names)})")
    if f.table is None:
        if len(spec) != 1:
            raise InputError(f"{f.path}: predictions must be one .npz member, got {spec}")
        return Field("pred", f, f.member(spec[0]))
    if len(spec) > 1 and any(is_list(f.table, c) for c in spec):
        raise InputError(f"{f.path}: a list column holds all classes; give it alone")
    return Field("pred", f, f.table, list(spec))


def _raise_bad_csv_cells(f, cols):
    """For CSV columns ``cols`` that should be numeric but were read as text: the
    InputError naming the line and cell at fault (no-op if ``f`` is no CSV file)."""
    if f.fmt != "csv" or not cols:
        return
    found = csv_problem(f.path, f.table.csv_delimiter(), cols)
    if found is not None:
        raise InputError(f"{f.path}: line {found[0]}: {found[1]}")


def _class_columns(cols):
    """The numbered columns of one prefix (``p0 p1 ...``, ``prob_1 prob_2 ...``, numbers
    0..C-1 or 1..C) in number order; [] if there is no such group or more than one.
    Other numeric columns (an id, a timestamp) are never taken for classes."""
    import re

    groups = {}
    for c in cols:
        m = re.fullmatch(r"(.*?)(\d+)", c)
        if m:
            groups.setdefault(m.group(1), []).append((int(m.group(2)), c))
    found = []
    for members in groups.values():
        idx = sorted(i for i, _ in members)
        if len(members) > 1 and idx[0] in (0, 1) and idx == list(range(idx[0], idx[0] + len(idx))):
            found.append([c for _, c in sorted(members)])
    return found[0] if len(found) == 1 else []


def _short(names, k=12):
    names = list(names)
    return ", ".join(names[:k]) + (f", ... ({len(names)} in all)" if len(names) > k else "")


def _named_field(role, f, name, defaults=()):
    """Column ``name`` (or the first of ``defaults`` present) of ``f``; None if absent."""
    if f.array is not None:
        return Field(role, f, f.array) if name is None else None
    names = f.columns
    if name is None:
        hit = [c for c in defaults if c in names]
        if not hit:
            return None
        name = hit[0]
    if name not in names:
        return None
    if f.table is None:
        return Field(role, f, f.member(name))
    return Field(role, f, f.table, [name])


def _label_field(fp, fl, label_column):
    if fl is not None:
        lab = _named_field("label", fl, label_column, LABEL_NAMES)
        if lab is not None:
            return lab
        if label_column is not None:
            raise InputError(f"{fl.path}: has no column {label_column!r} (columns: "
                             f"{_short(fl.columns)})")
        if len(fl.columns) == 1:
            return _named_field("label", fl, fl.columns[0])
        raise InputError(f"{fl.path}: which column holds the labels? none is named "
                         f"{'/'.join(LABEL_NAMES)}; give --label-column "
                         f"(columns: {_short(fl.columns)})")
    lab = _named_field("label", fp, label_column, LABEL_NAMES) if fp.array is None else None
    if lab is None:
        raise InputError(f"{fp.path}: no labels: give --labels FILE"
                         + ("" if fp.array is not None else
                            f", or --label-column (columns: {_short(fp.columns)})"))
    return lab


def _column_field(role, f, name, search):
    """The weights or groups: from their own file ``f``, else column ``name`` of a file in
    ``search``; None if neither is given."""
    if f is not None:
        fld = _named_field(role, f, name)
        if fld is None and f.array is None and len(f.columns) == 1:
            fld = _named_field(role, f, f.columns[0])
        if fld is None:
            raise InputError(f"{f.path}: has no column {name!r} for the {role}s "
                             f"(columns: {_short(f.columns)})")
        return fld
    if name is None:
        return None
    fld = next((x for x in (_named_field(role, s, name) for s in search) if x), None)
    if fld is None:
        raise InputError(f"no input file has a column {name!r} for the {role}s")
    return fld


def resolve_fields(fp, fl=None, fw=None, fg=None, *, pred_columns=None, label_column=None,
                   weight_column=None, group_column=None):
    """``{role: Field}`` for the prediction file ``fp`` and the optional label, weight and
    group files (opened :class:`InputFile` objects, or anything with the same ``path``,
    ``array``, ``table`` and ``columns``).

    Labels, weights and groups are resolved first, each from its own file if given,
    else from a column of the other files, so that a table's remaining numeric columns
    are the predictions. Raises :class:`InputError` naming the file and its columns.
    """
    fields = {"label": _label_field(fp, fl, label_column)}
    search = [f for f in (fl, fp) if f is not None]
    for role, f, name in (("weight", fw, weight_column), ("group", fg, group_column)):
        fld = _column_field(role, f, name, search)
        if fld is not None:
            fields[role] = fld
    taken = {c for fld in fields.values() if fld.file is fp and fld.columns
             for c in fld.columns}
    fields["pred"] = _pred_field(fp, pred_columns, taken)
    for fld in fields.values():
        if fld.columns and fld.role in ("label", "weight"):
            c = fld.columns[0]
            lst = fld.role == "label" and is_list(fld.src, c)  # targets, one per class
            if not (_numeric(fld.src, c) or (lst and _numeric_type(
                    fld.src.pa, fld.src.field_type(c).value_type))):
                _raise_bad_csv_cells(fld.file, [c])
                raise InputError(f"{fld.where}: the {fld.role}s must be numeric, the column "
                                 f"has type {fld.src.field_type(fld.columns[0])}; write them "
                                 f"as numbers, or name another column (--{fld.role}-column)")
    return fields


def label_tail(fields, pred_tail):
    """The shape of one label row (None: no labels): an array's trailing shape; a table
    column gives targets if it is a list column (the predictions' row shape), else ()."""
    lf = fields.get("label")
    if lf is None:
        return None
    if lf.columns is None:
        return tuple(lf.src.shape[1:])
    return tuple(pred_tail) if is_list(lf.src, lf.columns[0]) else ()


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """The shape of an evaluation, inferred once from the losses and the inputs.

    ``ndim``: 1 (one value per row) or 2 (rows x ``C`` columns); ``label_kind``:
    ``"index"`` (one class index per row) or ``"dense"`` (targets of the predictions'
    shape); ``classification``: some loss scores classes (accuracy and per-class
    tables apply); ``multilabel``: dense targets of independent columns; ``K``: rows of
    the per-class table (0: none).
    """

    ndim: int
    C: int
    label_kind: str
    classification: bool
    multilabel: bool
    K: int

    @classmethod
    def infer(cls, rows, tail, label_tail=None, num_classes=None):
        """The layout of predictions with rows of shape ``tail`` and labels with rows of
        shape ``label_tail`` (None: unknown) for the losses ``rows`` (LossSpec rows)."""
        tail = tuple(tail)
        if len(tail) > 1:
            raise InputError("predictions must be one row per sample (1-D, or 2-D rows x "
                             f"classes); got rows of shape {tail}")
        ndim, C = 1 + len(tail), (tail[0] if tail else 1)
        if num_classes is not None and ndim == 2 and num_classes != C:
            raise InputError(f"wrong number of classes: the predictions have {C} columns "
                             f"but --num-classes is {num_classes}")
        index = [r.name for r in rows if r.label_kind == "index"]
        if index and ndim == 1:
            raise InputError(f"{index[0]} needs predictions with a class axis (rows x "
                             "classes); these are one value per row")
        ltail = tuple(label_tail) if label_tail is not None else None
        if ltail is not None and len(ltail) == 1 and ltail[0] == 1 and ndim == 2 and C != 1:
            ltail = ()
        if ltail is None:
            kind = "index" if (ndim == 2 and (index or C > 1)) else "dense"
        elif ltail == () and ndim == 2:
            kind = "index"
        elif ltail == tail:
            kind = "dense"
        else:
            raise InputError(f"wrong number of classes: the labels have rows of shape {ltail} "
                             f"but the predictions have rows of shape {tail}")
        if kind == "dense" and index:
            raise InputError(f"{index[0]} needs integer class labels (one per row); the "
                             "labels have one value per class")
        classification = any(r.classification for r in rows)
        multilabel = ndim == 2 and kind == "dense" and all(r.multilabel for r in rows)
        K = 0 if not classification else (2 if ndim == 1 else C)
        return cls(ndim, C, kind, classification, multilabel, K)
