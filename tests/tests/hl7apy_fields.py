# The fields of HL7 v2 messages as Python hl7apy (PyPI) parses them, for the differential test
# (tests/tests/hl7_differential.rs): `python hl7apy_fields.py FILE...` prints {FILE: {"PID-3":
# [repetitions [components [subcomponents]]], ...}} with escapes resolved and trailing empty
# subcomponents, components and repetitions left out, as `journey hl7 map --fields` does.
# The character set is read from MSH-18 (8859/1, 8859/15, UNICODE UTF-8; else UTF-8 when the
# bytes are, else 8859/1) and the text handed to hl7apy, which takes text, not bytes.
import json, re, sys
from hl7apy.parser import parse_message
from hl7apy.consts import VALIDATION_LEVEL

COMPARED = {"MSH": [9, 10, 12, 18], "EVN": [2, 3, 6], "PID": [3, 5, 7, 8, 11, 32],
            "PV1": [2, 3, 4, 6, 19, 36, 37, 44, 45], "PV2": [9, 47], "MRG": [1],
            "ZBE": list(range(1, 10)), "ZFM": list(range(1, 6))}
CHARSETS = {"8859/1": "latin-1", "8859/15": "iso8859_15", "UNICODE UTF-8": "utf-8"}

def decode(raw):
    raw = raw.lstrip(b"\xef\xbb\xbf").lstrip()
    msh = raw.split(b"\r")[0].split(b"\n")[0]
    fields = msh.split(msh[3:4])
    charset = fields[17].decode("ascii") if len(fields) > 17 else ""
    if charset in CHARSETS:
        return raw.decode(CHARSETS[charset])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")

def unescape(text, enc):
    esc = enc["ESCAPE"]
    out, parts = [], text.split(esc)
    # text esc seq esc text esc seq esc text ...: odd parts are escape sequences. hl7apy
    # resolves none; it knows \F\ \S\ \T\ \R\ \E\ and formatting ones (dropped), and
    # writes any other escape character as \E\ (so \Xhh\ is not compared).
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(part)
        elif part in ("F", "S", "T", "R", "E"):
            out.append(enc[{"F": "FIELD", "S": "COMPONENT", "T": "SUBCOMPONENT",
                            "R": "REPETITION", "E": "ESCAPE"}[part]])
        elif part == ".br":
            out.append("\n")
    return "".join(out)

def placed(children, leaf):
    # hl7apy names a component or subcomponent by its position in the data type (XPN_10); one
    # of a simple type by its type (ST), alone or in a field of variable type (ZBE's), in
    # order; one past its version's data type (a 2.6 XPN has 14 components) not at all: it is
    # the next one after the last it places.
    out = []
    for child in children:
        m = re.search(r"_(\d+)$", child.name or "")
        at = int(m.group(1)) if m else len(out) + 1
        while len(out) < at:
            out.append(None)
        out[at - 1] = leaf(child)
    return out

def trim(items, empty):
    while items and empty(items[-1]):
        items.pop()
    return items

def tree(field, enc):
    comps = field.children
    def comp_value(c):
        subs = c.children or []
        if not subs:
            return [unescape(c.to_er7(), enc)]
        return placed(subs, lambda s: unescape(s.to_er7(), enc))
    comps = placed(comps, comp_value)
    comps = [trim([s or "" for s in (c or [])], lambda s: s == "") for c in comps]
    return trim(comps, lambda c: c == [])

def fields_of(raw):
    text = decode(raw).replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    # Only the segments compared: hl7apy refuses a whole message for a segment its version
    # does not know (PRT in 2.5.1).
    text = "\r".join(s for s in text.split("\r") if s[:3] in COMPARED)
    m = parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
    enc = m.encoding_chars
    out = {}
    for seg_name, numbers in COMPARED.items():
        segments = [s for s in m.children if s.name == seg_name]
        if not segments:
            continue
        for n in numbers:
            reps = [f for f in segments[0].children if f.name == f"{seg_name}_{n}"]
            value = trim([tree(f, enc) for f in reps], lambda r: r == [])
            if value:
                out[f"{seg_name}-{n}"] = value
    return out

result = {}
for path in sys.argv[1:]:
    try:
        result[path] = fields_of(open(path, "rb").read())
    except Exception as e:
        result[path] = {"hl7apy error": str(e)}
print(json.dumps(result))
