"""Kubernetes resource quantities as exact numbers, and the bounds Tenant fields accept.

``parse`` reads any quantity the API server accepts ("500m", "8Gi", "1e3") as a
``Fraction``, exactly and without the float or Decimal-context surprises of an exponent
in the hundreds. The rest defines what a Tenant may write: the API server's quantity
grammar is far wider than what a plan can hold, so Tenant fields accept a plain form
(no sign, no exponent) within bounds, checked twice from the same constants: by CEL
rules in the CRD (``tenantry.api.common``) and by the pydantic models, which the
control plane and the operator use.
"""

from __future__ import annotations

import re
from fractions import Fraction

# The API server's own grammar (apimachinery resource.Quantity).
_ANY = re.compile(
    r"^(?P<sign>[+-])?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<bin>[KMGTPE]i)|(?P<dec>[numkMGTPE])|[eE](?P<exp>[+-]?[0-9]+))?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_EXPONENT = 1000  # beyond any real value; keeps Fraction arithmetic cheap


def parse(text: str) -> Fraction:
    """The exact value of a Kubernetes quantity; ValueError when it is not one."""
    match = _ANY.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    value = Fraction(match["num"])
    if match["bin"]:
        value *= 1024 ** _BINARY[match["bin"]]
    elif match["dec"]:
        value *= Fraction(10) ** _DECIMAL[match["dec"]]
    elif match["exp"]:
        exponent = int(match["exp"])
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(f"{text!r}: exponent out of range")
        value *= Fraction(10) ** exponent
    return -value if match["sign"] == "-" else value


def cores(value: Fraction) -> str:
    """A CPU amount as Kubernetes would print it: "2", "1500m"."""
    if value.denominator == 1:
        return str(value.numerator)
    milli = value * 1000
    return f"{int(milli) if milli.denominator == 1 else float(milli):g}m"


def size(value: Fraction) -> str:
    """A byte amount in the largest binary unit that divides it: "8Gi", "1536Mi"."""
    for suffix, power in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
        unit = 1024**power
        if value >= unit and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(int(value)) if value.denominator == 1 else f"{float(value):g}"


# -- What Tenant fields accept --------------------------------------------------------
# Cores ("2", "0.5") or millicores ("500m"): no sign, no exponent, no other suffix.
CPU_PATTERN = r"^([0-9]{1,4}(\.[0-9]{1,3})?|[0-9]{1,7}m)$"
# A whole number of bytes with an optional unit ("512Mi", "1536Mi", "8Gi", "100G"): no
# fraction ("1.5Gi"), as the API server's quantity(...).isInteger() refuses every
# fraction, even one that is a whole number of bytes; no "m" (milli-bytes).
BYTES_PATTERN = r"^[0-9]{1,9}(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"
MAX_LENGTH = 20

CPU_MIN = "1m"
MEMORY_MIN = "1Mi"
STORAGE_MIN = "1Mi"
# The largest plan's quota for the whole tenant (tenantry.api.plans checks this): no
# single value above it can ever be scheduled. The plan's own quota is checked too.
CPU_MAX = "512"
MEMORY_MAX = "2Ti"
STORAGE_MAX = "64Ti"

CPU_FORMAT = (
    'must be a CPU amount in cores ("2", "0.5") or millicores ("500m"), without sign or exponent'
)
BYTES_FORMAT = (
    'must be a whole amount of bytes with a unit ("512Mi", "1536Mi", "8Gi", "100G"), '
    "without fraction, sign, exponent or the milli suffix m"
)


def check(text: str, *, pattern: str, low: str, high: str, what: str, form: str) -> str:
    """``text`` when it has the accepted form and lies in [low, high]; else ValueError
    with the message the CRD's rule gives."""
    if len(text) > MAX_LENGTH or not re.fullmatch(pattern, text):
        raise ValueError(f"{form}; got {text!r}")
    value = parse(text)
    if value < parse(low):
        raise ValueError(f"{what} must be at least {low}; got {text!r}")
    if value > parse(high):
        raise ValueError(
            f"{what} must be at most {high}, the largest plan's quota for a whole tenant; "
            f"got {text!r}"
        )
    return text
