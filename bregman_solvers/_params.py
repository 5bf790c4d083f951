"""Parameter tables: what each parameter of a solver may be, written once per class.

A class lists its parameters' allowed values in ``_parameter_constraints`` (the style of
scikit-learn's estimators, whose validator is private API, and importing this package must not
need scikit-learn), a subclass or a class that runs another's settings builds its table from the
other's rows for the settings it shares (:func:`shared_constraints`), and ``fit`` calls
:func:`validate_params` once before any work.
A value none of the entries accepts is refused by name: ``TypeError`` when no entry takes its
type, ``ValueError`` when one does but not its value (out of range, an unknown option).
"""
import inspect
import numbers

import numpy as np

__all__ = ["Interval", "Options", "CallableValue", "validate_params", "shared_constraints", "settings_for",
           "POSITIVE_INT", "POSITIVE_REAL", "SCHEDULE", "is_auto"]


def is_auto(value):
    """Whether a setting is the rule ``"auto"`` (a number or a schedule is not)."""
    return isinstance(value, str) and value == "auto"


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


class Interval:
    """Numbers of a kind (``numbers.Integral`` or ``numbers.Real``) between ``left`` and ``right``
    (None: unbounded), each end included or not as ``closed`` says ("both", "left", "right",
    "neither"). Booleans are never numbers here."""

    def __init__(self, kind, left, right, closed="both"):
        if kind not in (numbers.Integral, numbers.Real):
            raise ValueError(f"kind must be numbers.Integral or numbers.Real, got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def type_ok(self, value):
        return not _is_bool(value) and isinstance(value, self.kind)

    def accepts(self, value):
        if not self.type_ok(value) or (self.kind is numbers.Real and np.isnan(value)):
            return False
        low_in = self.closed in ("both", "left")
        high_in = self.closed in ("both", "right")
        if self.left is not None and (value < self.left or (value == self.left and not low_in)):
            return False
        if self.right is not None and (value > self.right or (value == self.right and not high_in)):
            return False
        return True

    def __str__(self):
        kind = "an int" if self.kind is numbers.Integral else "a number"
        low = "(-inf" if self.left is None else ("[" if self.closed in ("both", "left") else "(") + f"{self.left}"
        high = "inf)" if self.right is None else f"{self.right}" + ("]" if self.closed in ("both", "right") else ")")
        return f"{kind} in {low}, {high}"


class Options:
    """One of a few strings."""

    def __init__(self, *options):
        self.options = tuple(options)

    def type_ok(self, value):
        return isinstance(value, str)

    def accepts(self, value):
        return isinstance(value, str) and value in self.options

    def __str__(self):
        quoted = [repr(o) for o in self.options]
        return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


class CallableValue:
    """A callable (a schedule of the epoch, a callback)."""

    def __init__(self, description="a callable"):
        self.description = description

    def type_ok(self, value):
        return callable(value)

    accepts = type_ok

    def __str__(self):
        return self.description


#: The entries most tables use: a count of at least 1, a step or scale above 0 (inf included), a
#: schedule of the epoch
POSITIVE_INT = Interval(numbers.Integral, 1, None)
POSITIVE_REAL = Interval(numbers.Real, 0, None, "neither")
SCHEDULE = CallableValue("a schedule (a callable of the epoch)")


class _Type:
    """Instances of ``types`` (bool: True or False only; None: exactly None)."""

    def __init__(self, types, description):
        self.types, self.description = types, description

    def type_ok(self, value):
        if self.types is None:
            return value is None
        if self.types is bool:
            return _is_bool(value)
        return isinstance(value, self.types) and not _is_bool(value)

    accepts = type_ok

    def __str__(self):
        return self.description


def _entry(constraint):
    """A table entry as a constraint object: None, bool, str and other types are shorthands."""
    if constraint is None:
        return _Type(None, "None")
    if constraint is bool:
        return _Type(bool, "True or False")
    if constraint is str:
        return _Type(str, "a string")
    if isinstance(constraint, type):
        return _Type(constraint, f"a {constraint.__name__}")
    return constraint


def validate_params(owner, constraints):
    """Check every attribute of ``owner`` named in ``constraints`` (name -> list of allowed kinds:
    :class:`Interval`, :class:`Options`, :class:`CallableValue`, None, bool, str or a type);
    raises ``TypeError`` or ``ValueError`` naming the first parameter none of its kinds accepts."""
    for name, allowed in constraints.items():
        value = getattr(owner, name)
        entries = [_entry(c) for c in allowed]
        if any(e.accepts(value) for e in entries):
            continue
        described = [str(e) for e in entries]
        wanted = described[0] if len(described) == 1 else ", ".join(described[:-1]) + " or " + described[-1]
        error = ValueError if any(e.type_ok(value) for e in entries) else TypeError
        raise error(f"{name} must be {wanted}, got {value!r}")


def _parameter_names(cls_or_init):
    """The constructor's parameter names (of a class, or of an ``__init__`` function itself)."""
    init = cls_or_init.__init__ if isinstance(cls_or_init, type) else cls_or_init
    return [name for name, p in inspect.signature(init).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def shared_constraints(cls, init):
    """The rows of ``cls``'s table for the parameters that the constructor ``init`` takes too (a
    class that hands those settings on to ``cls`` checks them by ``cls``'s rules, no list copied)."""
    takes = set(_parameter_names(init))
    return {name: rule for name, rule in cls._parameter_constraints.items() if name in takes}


def settings_for(cls, source, leave_out=()):
    """The constructor parameters of ``source`` (an estimator, say) that ``cls``'s constructor takes
    too, by name, with ``source``'s values, less ``leave_out``: a class that hands its settings on
    needs no copy of the other's list (the two signatures are the lists)."""
    takes = set(_parameter_names(cls))
    return {name: getattr(source, name) for name in _parameter_names(type(source))
            if name in takes and name not in leave_out}
