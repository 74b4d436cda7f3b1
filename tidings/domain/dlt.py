"""India's TRAI DLT rules as Tidings applies them: templates, matching, headers, and the send check.

Under TRAI's TCCCPR 2018 every commercial SMS to an Indian number (+91) names the sender's DLT
entity id (the principal entity, "PE id"), a registered content template id, and a registered
header (sender id); the operator scrubs the text against the template and drops what does not
match. A gateway that cannot check this before sending finds out from a failed delivery report.

**Templates.** A template body is literal text with ``{#var#}`` placeholders, the one variable
syntax every DLT portal uses (Kaleyra, MSG91, Exotel and the operators' own FAQs say so).
Placeholders are recognised in any letter case (``{#VAR#}`` too), so a body copied from a
portal's export still works; everything else is literal. ``template_problem`` accepts a body
when it is:

- not blank, and at most ``TEMPLATE_MAX_CHARS`` (2,000) characters, the content-template limit
  providers quote for the DLT portals;
- at least one non-whitespace literal character: a template made only of variables would let
  any text through (portals go further and want real fixed text; that is their review, not ours);
- free of malformed placeholders: a ``{#``, ``#}`` or ``#var#`` that is not part of an exact
  ``{#var#}`` (``{#var}``, ``##var##``, ``{# var #}``, an unclosed ``{#var#``) is rejected, since
  the portal would read it as literal text and every send would then fail scrubbing.

**Matching.** ``matches_template`` says whether a text is an instance of a template:

- each ``{#var#}`` stands for 0 to ``VAR_MAX_CHARS`` (30) characters of any kind, spaces, digits,
  punctuation and line breaks included. Thirty is the most conservative figure providers publish
  (Kaleyra: 0-30 per ``{#var#}``; MSG91 allows 40): a text within 30 passes every operator that
  allows more. Characters are Unicode code points, so a Hindi letter counts one. Adjacent
  placeholders (``{#var#}{#var#}``) together hold up to 30 each, the portals' own workaround for
  long values;
- literal text must be identical: same case, same punctuation, same spaces. MSG91 says operators
  tolerate some differences in spaces and punctuation, but not all do and the rules are not
  published, so Tidings is strict: a text that passes here passes scrubbing anywhere. The one
  tolerance is line endings: CRLF and LF are the same (web forms submit CRLF). No Unicode
  normalisation is applied (a decomposed letter does not equal its composed form).
- the whole text must match: extra text before or after fails.

The matcher does not hand the template to ``re`` as one backtracking pattern: with a lazy
``(.{0,30}?)`` per placeholder, a text that almost matches makes the engine try every way of
sharing characters between placeholders, exponential in their number (six placeholders and 187
characters took 16 s on CPython 3.11). Instead it walks the template's parts once, keeping the
set of text positions reachable so far as the bits of one integer (a Thompson-style
simulation): each part costs a few big-integer operations on ``len(text)`` bits and each
distinct literal one scan of the text, whatever the text. The parsed form of each template body
is cached (``functools.lru_cache``), so a broadcast re-uses one parse.

**Headers.** ``sender_id_problem``: a DLT header is 6 characters; TRAI gives promotional traffic
6 digits and transactional/service traffic 6 letters. Tidings accepts any 6 ASCII letters or
digits (either case), since the header's category is registered on the portal, not knowable
here. Fast2SMS's DLT manager also lists 3-6 letter senders, but the DLT header itself is 6.

**Sends.** ``requires_dlt`` is true for +91 numbers; ``dlt_problem`` gives the first reason a send
to India is not compliant, as a sentence for a 400 answer.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

PLACEHOLDER: Final = "{#var#}"
"""The DLT variable marker, as written on every DLT portal."""

VAR_MAX_CHARS: Final = 30
"""The most characters one ``{#var#}`` may stand for (Kaleyra's DLT figure; MSG91 allows 40)."""

TEMPLATE_MAX_CHARS: Final = 2000
"""The longest template body accepted, line breaks counted once (CRLF as one)."""

SENDER_ID_LENGTH: Final = 6
"""A DLT header is exactly this many characters."""

INDIA_PREFIX: Final = "+91"

_TOO_LONG: Final = f"the template body is longer than {TEMPLATE_MAX_CHARS} characters"

# At each position the exact placeholder is tried first, so a well-formed ``{#var#}`` is never
# reported; what remains of a marker is malformed. ASCII-only case folding: "var" has no
# non-ASCII look-alikes to fold.
_TOKEN: Final = re.compile(r"(\{#var#\})|\{#|#\}|#var#", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class _Compiled:
    """A parsed template: ``parts`` alternate literal text (``str``) and the most characters a
    run of adjacent placeholders may hold (``int``), in order; ``problem`` is
    ``template_problem``'s answer for the body."""

    parts: tuple[str | int, ...]
    problem: str | None


def template_problem(body: str) -> str | None:
    """Why ``body`` cannot be stored as a DLT template, as a sentence; ``None`` when it can.

    Checked in this order: blank, longer than ``TEMPLATE_MAX_CHARS`` (after CRLF becomes LF),
    a malformed placeholder (with its 1-based character position, CRLF counted as one), no
    literal text other than whitespace. Pure; never raises.
    """
    return _parse(body).problem


def matches_template(text: str, template_body: str) -> bool:
    """Whether ``text`` is ``template_body`` with each ``{#var#}`` replaced by 0 to
    ``VAR_MAX_CHARS`` characters and the literal text otherwise identical (CRLF equal to LF).

    A body ``template_problem`` rejects matches nothing. Runs in time about linear in
    ``len(text)`` per template part, whatever the input (see the module docstring).
    """
    compiled = _parse(template_body)
    if compiled.problem is not None:
        return False
    return _matches(_normalise(text), compiled.parts)


def extract_variables(text: str, template_body: str) -> tuple[str, ...] | None:
    """The values that fill the ``{#var#}`` placeholders of ``template_body`` in ``text``, one per
    placeholder in order, when ``matches_template(text, template_body)``; ``None`` otherwise.

    For providers that send a stored template plus its variables instead of the text. Values
    are cut from ``text`` as matching reads it, CRLF as LF. When a text can be split more than
    one way (a literal that also occurs inside a value), each run of placeholders takes the
    shortest value that still lets the rest match, leftmost run first, as a lazy regular
    expression would. A run of adjacent placeholders (``{#var#}{#var#}``) shares its value out
    ``VAR_MAX_CHARS`` characters at a time, first placeholder first, so later ones may be empty.
    Substituting the values back into the template gives the text again. Same cost as
    ``matches_template``, whatever the input: no backtracking.
    """
    compiled = _parse(template_body)
    if compiled.problem is not None:
        return None
    normalised = _normalise(text)
    parts = compiled.parts
    tails = _tails(normalised, parts)
    if not tails[0] & 1:
        return None
    values: list[str] = []
    position = 0
    for index, part in enumerate(parts):
        if isinstance(part, str):
            position += len(part)
            continue
        # The shortest run value after which the remaining parts still match: the lowest bit
        # of tails[index + 1] within reach. One exists, since tails[index] holds ``position``.
        window = (tails[index + 1] >> position) & ((1 << (part + 1)) - 1)
        length = (window & -window).bit_length() - 1
        run = normalised[position:position + length]
        values.extend(
            run[start:start + VAR_MAX_CHARS]
            for start in range(0, part, VAR_MAX_CHARS)
        )
        position += length
    return tuple(values)


def requires_dlt(phone_e164: str) -> bool:
    """Whether a send to ``phone_e164`` (E.164, e.g. ``"+919876543210"``) falls under India's
    DLT rules: true exactly when it starts with ``+91``. Country codes are prefix-free, so no
    other country's number starts so."""
    return phone_e164.startswith(INDIA_PREFIX)


def sender_id_problem(sender_id: str | None) -> str | None:
    """Why ``sender_id`` cannot be the header of a DLT send, as a sentence; ``None`` when it is
    exactly ``SENDER_ID_LENGTH`` ASCII letters or digits (``"JNACNT"``, ``"562993"``).

    Nothing is stripped or upper-cased: the header goes to the provider as given.
    """
    if not sender_id:
        return "a DLT send needs a 6-character sender id (the header registered on DLT)"
    if len(sender_id) != SENDER_ID_LENGTH or not (sender_id.isascii() and sender_id.isalnum()):
        return (
            "the sender id must be the 6-letter or 6-digit header registered on DLT, "
            "with no spaces or symbols"
        )
    return None


def dlt_problem(
    *,
    phone: str,
    text: str,
    sender_id: str | None,
    template_id: str | None,
    template_body: str | None,
    entity_id: str | None,
) -> str | None:
    """The reason a send of ``text`` to ``phone`` (E.164) is not DLT-compliant, as one sentence
    for a 400 answer; ``None`` when it is compliant or ``phone`` is not Indian.

    ``template_body`` is the stored body of ``template_id`` for this tenant, ``None`` when no
    such template is stored. Blank ids count as missing. The first failing check wins, in this
    order: entity id, template id, template known, text matches the template, sender id. The
    text itself is never echoed back.
    """
    if not requires_dlt(phone):
        return None
    if entity_id is None or not entity_id.strip():
        return "sending to India needs a DLT entity id: set dlt_entity_id on the SMS app"
    if template_id is None or not template_id.strip():
        return "sending to India needs dlt_template_id, the id of a registered DLT template"
    if template_body is None:
        return f"unknown DLT template {template_id!r}: store the template before sending with it"
    if not matches_template(text, template_body):
        return (
            f"the text does not match DLT template {template_id!r}: the fixed text must be "
            f"identical and each {PLACEHOLDER} may hold at most {VAR_MAX_CHARS} characters"
        )
    return sender_id_problem(sender_id)


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n")


def _parse(body: str) -> _Compiled:
    """``_compile``, except that a body too long even with every line break a CRLF is turned
    away before it is scanned or kept in the cache."""
    if len(body) > 2 * TEMPLATE_MAX_CHARS and not body.isspace():
        return _Compiled((), _TOO_LONG)
    return _compile(body)


@functools.lru_cache(maxsize=1024)
def _compile(body: str) -> _Compiled:
    normalised = _normalise(body)
    parts: list[str | int] = []
    problem: str | None = None
    start = 0
    for token in _TOKEN.finditer(normalised):
        if token.group(1) is None:
            problem = problem or (
                f"malformed placeholder {token.group(0)!r} at character {token.start() + 1}: "
                f"write each variable exactly as {PLACEHOLDER}"
            )
            continue
        if token.start() > start:
            parts.append(normalised[start:token.start()])
        if parts and isinstance(parts[-1], int):
            parts[-1] += VAR_MAX_CHARS
        else:
            parts.append(VAR_MAX_CHARS)
        start = token.end()
    if start < len(normalised):
        parts.append(normalised[start:])
    if not normalised.strip():
        problem = "the template body is empty"
    elif len(normalised) > TEMPLATE_MAX_CHARS:
        problem = _TOO_LONG
    elif problem is None and not any(
            isinstance(part, str) and part.strip() for part in parts):
        problem = f"the template has no fixed text, only {PLACEHOLDER} placeholders"
    return _Compiled(tuple(parts), problem)


def _matches(text: str, parts: tuple[str | int, ...]) -> bool:
    """Thompson-style simulation: bit ``p`` of ``reachable`` is set when some way of matching the
    parts so far ends at text position ``p`` (0 to ``len(text)``). Each part costs a few
    big-integer operations on ``len(text)`` bits; each distinct literal one scan of the text."""
    end = len(text)
    within = (1 << (end + 1)) - 1
    occurrences: dict[str, int] = {}
    reachable = 1
    for part in parts:
        if isinstance(part, int):
            reachable = _widen(reachable, part) & within
        else:
            if part not in occurrences:
                occurrences[part] = _occurrences(text, part)
            reachable = (reachable & occurrences[part]) << len(part)
        if not reachable:
            return False
    return bool(reachable >> end & 1)


def _tails(text: str, parts: tuple[str | int, ...]) -> list[int]:
    """The matcher run backwards: bit ``p`` of ``tails[i]`` is set when ``parts[i:]`` match
    ``text[p:]`` exactly; ``tails[len(parts)]`` is the end of the text alone."""
    tails = [0] * (len(parts) + 1)
    tails[-1] = 1 << len(text)
    occurrences: dict[str, int] = {}
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        after = tails[index + 1]
        if isinstance(part, int):
            tails[index] = _narrow(after, part)
        else:
            if part not in occurrences:
                occurrences[part] = _occurrences(text, part)
            tails[index] = occurrences[part] & (after >> len(part))
        if not tails[index]:
            break
    return tails


def _narrow(reachable: int, most: int) -> int:
    """Every position of ``reachable`` moved back by 0 to ``most`` characters (positions below
    0 fall away): ``_widen`` in the other direction."""
    span = 1
    while span <= most:
        step = min(span, most + 1 - span)
        reachable |= reachable >> step
        span += step
    return reachable


def _widen(reachable: int, most: int) -> int:
    """Every position of ``reachable`` moved on by 0 to ``most`` characters: shifts are OR-ed
    in doubling steps, so ``most`` costs about log2(most) operations."""
    span = 1  # reachable now holds shifts 0 .. span - 1
    while span <= most:
        step = min(span, most + 1 - span)
        reachable |= reachable << step
        span += step
    return reachable


def _occurrences(text: str, literal: str) -> int:
    """A bit set at each position where ``literal`` starts in ``text``."""
    marks = bytearray(b"0") * (len(text) + 1)
    found = text.find(literal)
    while found != -1:
        marks[found] = ord("1")
        found = text.find(literal, found + 1)
    marks.reverse()
    return int(marks, 2)
