"""India's DLT rules: template validation, text-to-template matching, headers and the send check."""

from __future__ import annotations

import random
import re

import pytest

from tidings.domain.dlt import (
    PLACEHOLDER,
    TEMPLATE_MAX_CHARS,
    VAR_MAX_CHARS,
    dlt_problem,
    extract_variables,
    matches_template,
    requires_dlt,
    sender_id_problem,
    template_problem,
)

V = PLACEHOLDER
OTP = f"Your OTP is {V}. Do not share it. - ACME"
FULL = "x" * VAR_MAX_CHARS
OVER = "x" * (VAR_MAX_CHARS + 1)


@pytest.mark.parametrize(("template", "text", "expected"), [
    pytest.param("Welcome to ACME.", "Welcome to ACME.", True, id="literal-only-exact"),
    pytest.param("Welcome to ACME.", "Welcome to ACME!", False, id="literal-only-differs"),
    pytest.param(OTP, "Your OTP is 123456. Do not share it. - ACME", True, id="placeholder-short"),
    pytest.param(OTP, "Your OTP is . Do not share it. - ACME", True, id="placeholder-empty"),
    pytest.param(OTP, f"Your OTP is {FULL}. Do not share it. - ACME", True,
                 id="placeholder-30-chars"),
    pytest.param(OTP, f"Your OTP is {OVER}. Do not share it. - ACME", False,
                 id="placeholder-31-chars-fails"),
    pytest.param(OTP, "Your OTP is a b, c.d. Do not share it. - ACME", True,
                 id="placeholder-holds-spaces-and-punctuation"),
    pytest.param(OTP, "Your OTP is 12\n34. Do not share it. - ACME", True,
                 id="placeholder-holds-a-line-break"),
    pytest.param(f"Hi {V}, order {V} of Rs {V} is confirmed. - ACME",
                 "Hi Asha, order A-1029 of Rs 1,499.00 is confirmed. - ACME", True,
                 id="several-placeholders"),
    pytest.param(f"Hi {V}, order {V} of Rs {V} is confirmed. - ACME",
                 "Hi Asha, order A-1029 is confirmed. - ACME", False,
                 id="several-placeholders-literal-missing"),
    pytest.param(f"Track: {V}{V}{V} - ACME", f"Track: {'u' * 90} - ACME", True,
                 id="adjacent-placeholders-hold-30-each"),
    pytest.param(f"Track: {V}{V}{V} - ACME", f"Track: {'u' * 91} - ACME", False,
                 id="adjacent-placeholders-over-their-total-fails"),
    pytest.param(f"{V} {V} - ACME", f"{FULL} {FULL} - ACME", True,
                 id="spaced-placeholders-30-each"),
    pytest.param(f"{V} {V} - ACME", f"{FULL} {OVER} - ACME", False,
                 id="spaced-placeholders-cannot-borrow-across-literal"),
    pytest.param(f"Pay Rs.100 (approx) *T&C [a-z]+ ^$ {V} | ok?",
                 "Pay Rs.100 (approx) *T&C [a-z]+ ^$ now | ok?", True,
                 id="regex-metacharacters-are-literal"),
    pytest.param("Pay Rs.100 (approx) *T&C", "Pay Rsx100 (approx) *T&C", False,
                 id="dot-in-literal-is-not-a-wildcard"),
    pytest.param("Pay Rs.100 (approx) *T&C", "Pay Rs.100 approx *T&C", False,
                 id="parentheses-in-literal-are-required"),
    pytest.param(f"आपका OTP {V} है। - ACME", "आपका OTP ४५६७८९ है। - ACME", True,
                 id="hindi-literal-and-variable"),
    pytest.param(f"आपका OTP {V} है। - ACME", "आपका OTP 456789 है - ACME", False,
                 id="hindi-literal-missing-danda"),
    pytest.param(f"{V} नमस्ते - ACME", f"{'न' * VAR_MAX_CHARS} नमस्ते - ACME", True,
                 id="hindi-variable-counts-code-points"),
    pytest.param(f"Dear {V},\r\nYour bill is due. - ACME",
                 "Dear Ravi,\nYour bill is due. - ACME", True, id="crlf-template-lf-text"),
    pytest.param(f"Dear {V},\nYour bill is due. - ACME",
                 "Dear Ravi,\r\nYour bill is due. - ACME", True, id="lf-template-crlf-text"),
    pytest.param("Dear user,\nbye - ACME", "Dear user, bye - ACME", False,
                 id="line-break-is-not-a-space"),
    pytest.param("Your bill is due. - ACME", "Your  bill is due. - ACME", False,
                 id="doubled-space-fails"),
    pytest.param(OTP, "Your OTP is 1234. Do not share it. - ACME. Thanks", False,
                 id="trailing-extra-text-fails"),
    pytest.param(OTP, "Hi! Your OTP is 1234. Do not share it. - ACME", False,
                 id="leading-extra-text-fails"),
    pytest.param(OTP, "Your OTP is 1234. Do not share it. - ACME\n", False,
                 id="trailing-newline-fails"),
    pytest.param(OTP, "your otp is 1234. do not share it. - acme", False,
                 id="literal-is-case-sensitive"),
    pytest.param("Your OTP is {#VAR#}. - ACME", "Your OTP is 9876. - ACME", True,
                 id="placeholder-marker-case-insensitive"),
    pytest.param("Your OTP is {#var}. - ACME", "Your OTP is {#var}. - ACME", False,
                 id="malformed-template-matches-nothing"),
    pytest.param(f"Code {V}", "Code {#var#}", True, id="placeholder-filled-with-its-marker"),
])
def test_matches_template(template: str, text: str, expected: bool) -> None:
    assert matches_template(text, template) is expected


@pytest.mark.parametrize(("body", "problem"), [
    pytest.param(OTP, None, id="otp-template"),
    pytest.param("Welcome to ACME.", None, id="literal-only"),
    pytest.param(f"{V}{V} - ACME", None, id="adjacent-placeholders"),
    pytest.param("Code {#Var#} - ACME", None, id="placeholder-any-case"),
    pytest.param("Order #1029 is {#var#}. Mail a#b.in - ACME", None, id="lone-hash-is-literal"),
    pytest.param("x" * TEMPLATE_MAX_CHARS, None, id="at-length-limit"),
    pytest.param("x\r\n" * (TEMPLATE_MAX_CHARS // 2), None, id="crlf-counts-once"),
    pytest.param("", "the template body is empty", id="empty"),
    pytest.param(" \n\t", "the template body is empty", id="whitespace-only"),
    pytest.param("x" * (TEMPLATE_MAX_CHARS + 1),
                 f"the template body is longer than {TEMPLATE_MAX_CHARS} characters",
                 id="over-length-limit"),
    pytest.param("x" * 1_000_000,
                 f"the template body is longer than {TEMPLATE_MAX_CHARS} characters",
                 id="far-over-length-limit"),
    pytest.param(" " * 1_000_000, "the template body is empty", id="far-over-length-blank"),
    pytest.param(V, f"the template has no fixed text, only {V} placeholders",
                 id="placeholder-only"),
    pytest.param(f" {V}\n{V} ", f"the template has no fixed text, only {V} placeholders",
                 id="placeholders-and-whitespace-only"),
    pytest.param("Code {#var} - ACME",
                 "malformed placeholder '{#' at character 6: write each variable exactly "
                 f"as {V}", id="unclosed-brace"),
    pytest.param("Code {#var# - ACME",
                 f"malformed placeholder '{{#' at character 6: write each variable exactly as {V}",
                 id="missing-closing-brace"),
    pytest.param("Code ##var## - ACME",
                 f"malformed placeholder '#var#' at character 7: write each variable exactly "
                 f"as {V}", id="hash-hash-var"),
    pytest.param("Code {# var #} - ACME",
                 f"malformed placeholder '{{#' at character 6: write each variable exactly as {V}",
                 id="spaces-inside-marker"),
    pytest.param("Code #var#} - ACME",
                 f"malformed placeholder '#var#' at character 6: write each variable exactly "
                 f"as {V}", id="missing-opening-brace"),
    pytest.param(f"Code {V} and {{#name#}} - ACME",
                 f"malformed placeholder '{{#' at character 18: write each variable exactly "
                 f"as {V}", id="named-variable"),
    pytest.param(f"Code {{{V}#}} - ACME",
                 f"malformed placeholder '#}}' at character 14: write each variable exactly "
                 f"as {V}", id="nested-marker"),
])
def test_template_problem(body: str, problem: str | None) -> None:
    assert template_problem(body) == problem


@pytest.mark.parametrize(("phone", "expected"), [
    pytest.param("+919876543210", True, id="india-mobile"),
    pytest.param("+911123456789", True, id="india-landline"),
    pytest.param("+12025550123", False, id="us"),
    pytest.param("+9230012345678", False, id="pakistan-starts-with-9"),
    pytest.param("+447911123456", False, id="uk"),
])
def test_requires_dlt(phone: str, expected: bool) -> None:
    assert requires_dlt(phone) is expected


BAD_SENDER = (
    "the sender id must be the 6-letter or 6-digit header registered on DLT, "
    "with no spaces or symbols"
)
MISSING_SENDER = "a DLT send needs a 6-character sender id (the header registered on DLT)"


@pytest.mark.parametrize(("sender_id", "problem"), [
    pytest.param("JNACNT", None, id="six-letters-service-header"),
    pytest.param("562993", None, id="six-digits-promotional-header"),
    pytest.param("AB12CD", None, id="six-alphanumeric"),
    pytest.param("jnacnt", None, id="lower-case-letters"),
    pytest.param(None, MISSING_SENDER, id="missing"),
    pytest.param("", MISSING_SENDER, id="empty"),
    pytest.param("JNACN", BAD_SENDER, id="five-characters"),
    pytest.param("JNACNTX", BAD_SENDER, id="seven-characters"),
    pytest.param("JN-CNT", BAD_SENDER, id="hyphen"),
    pytest.param("JN CNT", BAD_SENDER, id="space"),
    pytest.param(" JNACNT", BAD_SENDER, id="leading-space-not-stripped"),
    pytest.param("ÄBCDEF", BAD_SENDER, id="non-ascii-letter"),
    pytest.param("१२३४५६", BAD_SENDER, id="devanagari-digits"),
    pytest.param("+91987", BAD_SENDER, id="phone-like"),
])
def test_sender_id_problem(sender_id: str | None, problem: str | None) -> None:
    assert sender_id_problem(sender_id) == problem


INDIA = "+919876543210"
GOOD = {
    "phone": INDIA,
    "text": "Your OTP is 482913. Do not share it. - ACME",
    "sender_id": "JNACNT",
    "template_id": "1107160000000012345",
    "template_body": OTP,
    "entity_id": "1201159100000012345",
}
MISMATCH = (
    "the text does not match DLT template '1107160000000012345': the fixed text must be "
    f"identical and each {V} may hold at most {VAR_MAX_CHARS} characters"
)


@pytest.mark.parametrize(("changes", "problem"), [
    pytest.param({}, None, id="compliant"),
    pytest.param({"phone": "+12025550123", "entity_id": None, "template_id": None,
                  "template_body": None, "sender_id": None, "text": "anything"},
                 None, id="non-indian-passes-through"),
    pytest.param({"entity_id": None},
                 "sending to India needs a DLT entity id: set dlt_entity_id on the SMS app",
                 id="missing-entity-id"),
    pytest.param({"entity_id": "  "},
                 "sending to India needs a DLT entity id: set dlt_entity_id on the SMS app",
                 id="blank-entity-id"),
    pytest.param({"template_id": None, "template_body": None},
                 "sending to India needs dlt_template_id, the id of a registered DLT template",
                 id="missing-template-id"),
    pytest.param({"template_id": ""},
                 "sending to India needs dlt_template_id, the id of a registered DLT template",
                 id="blank-template-id"),
    pytest.param({"template_body": None},
                 "unknown DLT template '1107160000000012345': store the template before "
                 "sending with it", id="unknown-template"),
    pytest.param({"text": "Your OTP is 482913. - ACME"}, MISMATCH, id="text-not-matching"),
    pytest.param({"text": f"Your OTP is {OVER}. Do not share it. - ACME"}, MISMATCH,
                 id="variable-too-long"),
    pytest.param({"sender_id": None}, MISSING_SENDER, id="missing-sender-id"),
    pytest.param({"sender_id": "+14155550100"}, BAD_SENDER, id="bad-sender-id"),
    pytest.param({"entity_id": None, "sender_id": None},
                 "sending to India needs a DLT entity id: set dlt_entity_id on the SMS app",
                 id="entity-id-reported-before-sender"),
    pytest.param({"text": "nope", "sender_id": None}, MISMATCH,
                 id="mismatch-reported-before-sender"),
])
def test_dlt_problem(changes: dict[str, str | None], problem: str | None) -> None:
    fields = {**GOOD, **changes}
    assert dlt_problem(
        phone=str(fields["phone"]),
        text=str(fields["text"]),
        sender_id=fields["sender_id"],
        template_id=fields["template_id"],
        template_body=fields["template_body"],
        entity_id=fields["entity_id"],
    ) == problem


def test_near_miss_against_many_placeholders_is_answered_without_backtracking() -> None:
    # As one backtracking regex, "(.{0,30}?)a" repeated six times already takes seconds on a
    # 187-character near miss; here 240 placeholders (near the template length limit) and a
    # 7,000-character text.
    template = "a" + f"{V}a" * 240 + "b"
    assert template_problem(template) is None
    assert not matches_template("a" * 7000 + "c", template)
    assert matches_template("a" * 7000 + "b", template)


def test_long_run_of_adjacent_placeholders_is_answered_without_backtracking() -> None:
    template = V * 250 + "!"
    most = 250 * VAR_MAX_CHARS
    assert matches_template("y" * most + "!", template)
    assert not matches_template("y" * (most + 1) + "!", template)
    assert not matches_template("y" * most + "?", template)


def _reference(text: str, template: str) -> bool:
    """The naive backtracking regex: fine for the short inputs below, and obviously right."""
    text = text.replace("\r\n", "\n")
    pieces = re.split(r"\{#var#\}", template.replace("\r\n", "\n"), flags=re.IGNORECASE)
    pattern = f"(.{{0,{VAR_MAX_CHARS}}}?)".join(re.escape(piece) for piece in pieces)
    return re.fullmatch(pattern, text, re.DOTALL) is not None


def test_matcher_agrees_with_a_backtracking_regex_on_random_short_inputs() -> None:
    rng = random.Random(20240605)
    for _ in range(2000):
        template = "".join(rng.choice(["a", "b", " ", "\n", V]) for _ in range(rng.randint(1, 6)))
        if template_problem(template) is not None:
            continue
        text = "".join(rng.choice("ab \n") for _ in range(rng.randint(0, 40)))
        assert matches_template(text, template) is _reference(text, template), (template, text)


@pytest.mark.parametrize(("template", "text", "values"), [
    pytest.param(OTP, "Your OTP is 482913. Do not share it. - ACME", ("482913",),
                 id="one-variable"),
    pytest.param(f"Hi {V}, order {V} of Rs {V} is confirmed. - ACME",
                 "Hi Asha, order A-1029 of Rs 1,499.00 is confirmed. - ACME",
                 ("Asha", "A-1029", "1,499.00"), id="several-variables-in-order"),
    pytest.param(OTP, "Your OTP is . Do not share it. - ACME", ("",), id="empty-variable"),
    pytest.param(f"{V} - ACME", f"{FULL} - ACME", (FULL,), id="variable-at-start-30-chars"),
    pytest.param(f"Code: {V}", "Code: a b\nc", ("a b\nc",), id="variable-at-end-with-line-break"),
    pytest.param("Welcome to ACME.", "Welcome to ACME.", (), id="no-placeholders"),
    pytest.param("Your OTP is {#VAR#}. - ACME", "Your OTP is 9876. - ACME", ("9876",),
                 id="placeholder-any-case"),
    pytest.param(f"Hi {V}, bye - ACME", "Hi a, b, bye - ACME", ("a, b",),
                 id="literal-inside-value-is-part-of-it"),
    pytest.param(f"{V}, {V} - ACME", "a, b, c - ACME", ("a", "b, c"),
                 id="ambiguous-split-gives-the-earlier-variable-the-shortest-value"),
    pytest.param(f"Track: {V}{V}{V} - ACME", f"Track: {'u' * 40} - ACME",
                 ("u" * 30, "u" * 10, ""), id="adjacent-placeholders-fill-first-one-first"),
    pytest.param(f"Track: {V}{V} - ACME", f"Track: {'u' * 60} - ACME", ("u" * 30, "u" * 30),
                 id="adjacent-placeholders-full"),
    pytest.param(f"Dear {V},\r\nbye - ACME", "Dear Ravi,\r\nbye - ACME", ("Ravi",),
                 id="crlf-in-literal"),
    pytest.param(f"Note: {V} - ACME", "Note: a\r\nb - ACME", ("a\nb",),
                 id="crlf-in-value-comes-back-as-lf"),
    pytest.param(f"आपका OTP {V} है। - ACME", "आपका OTP ४५६७८९ है। - ACME", ("४५६७८९",),
                 id="hindi"),
    pytest.param(f"Code {V}", "Code {#var#}", ("{#var#}",), id="value-that-looks-like-a-marker"),
    pytest.param(OTP, f"Your OTP is {OVER}. Do not share it. - ACME", None,
                 id="variable-too-long-is-no-match"),
    pytest.param(OTP, "Your OTP is 1. - ACME", None, id="literal-missing-is-no-match"),
    pytest.param("Your OTP is {#var}. - ACME", "Your OTP is {#var}. - ACME", None,
                 id="malformed-template-is-no-match"),
])
def test_extract_variables(template: str, text: str, values: tuple[str, ...] | None) -> None:
    assert extract_variables(text, template) == values


def test_extract_variables_on_a_near_miss_with_many_placeholders_is_fast() -> None:
    template = "a" + f"{V}a" * 240 + "b"
    assert extract_variables("a" * 7000 + "c", template) is None
    values = extract_variables("a" * 7000 + "b", template)
    assert values is not None
    assert len(values) == 240
    assert "a" + "a".join(values) + "a" + "b" == "a" * 7000 + "b"


def _reference_extract(text: str, template: str) -> tuple[str, ...] | None:
    """A lazy backtracking regex with one group per run of adjacent placeholders, each run's
    value then dealt out 30 characters at a time: fine for short inputs, obviously right."""
    text = text.replace("\r\n", "\n")
    pieces = re.split(r"((?:\{#var#\})+)", template.replace("\r\n", "\n"), flags=re.IGNORECASE)
    counts = [len(run) // len(V) for run in pieces[1::2]]
    pattern = "".join(
        re.escape(piece) if index % 2 == 0 else f"(.{{0,{VAR_MAX_CHARS * counts[index // 2]}}}?)"
        for index, piece in enumerate(pieces)
    )
    found = re.fullmatch(pattern, text, re.DOTALL)
    if found is None:
        return None
    return tuple(
        value[start:start + VAR_MAX_CHARS]
        for value, count in zip(found.groups(), counts, strict=True)
        for start in range(0, count * VAR_MAX_CHARS, VAR_MAX_CHARS)
    )


def _fill(template: str, values: list[str] | tuple[str, ...]) -> str:
    pieces = re.split(r"\{#var#\}", template)
    filled = zip(values, pieces[1:], strict=True)
    return pieces[0] + "".join(value + piece for value, piece in filled)


def test_extract_variables_agrees_with_a_backtracking_regex_on_random_short_inputs() -> None:
    rng = random.Random(20240606)
    matched = 0
    for _ in range(3000):
        template = "".join(rng.choice(["a", "b", " ", "\n", V]) for _ in range(rng.randint(1, 6)))
        if template_problem(template) is not None:
            continue
        if rng.random() < 0.5:  # an instance of the template, often splittable several ways
            fillers = ["".join(rng.choice("ab \n") for _ in range(rng.randint(0, 34)))
                       for _ in range(template.count(V))]
            text = _fill(template, fillers)
        else:
            text = "".join(rng.choice("ab \n") for _ in range(rng.randint(0, 70)))
        values = extract_variables(text, template)
        assert values == _reference_extract(text, template), (template, text)
        assert (values is not None) is matches_template(text, template), (template, text)
        if values is not None:
            matched += 1
            assert _fill(template, values) == text, (template, text)
            assert all(len(value) <= VAR_MAX_CHARS for value in values), (template, text)
    assert matched > 500
