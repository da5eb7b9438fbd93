#!/usr/bin/env python3
"""Checks otsyncd's /metrics scrapes against the Prometheus conventions.

Usage: check_metrics.py SCRAPE [LATER_SCRAPE ...]

Each file is one scrape (text format 0.0.4), in the order taken. Checks:
  - every line is a well-formed HELP, TYPE or sample line, each family has one
    HELP and one TYPE before its samples, samples are not interleaved between
    families, and sample names fit their family's type;
  - prometheus_client's text-format parser reads it (Debian python3-prometheus-client);
  - counter families end in _total, and no family is another one's name plus
    _total, _created, _count, _sum, _bucket, _info (a collision under OpenMetrics);
  - the scrape, as OpenMetrics (counter families without _total, `# EOF`),
    passes prometheus_client's strict OpenMetrics parser;
  - counters never go down from one scrape to the next.
Exits 0 when all hold, 1 with the problems on stderr, 77 without prometheus_client.
"""
import math
import re
import sys

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
    from prometheus_client.parser import text_string_to_metric_families as parse_text
except ImportError:
    print("check_metrics: python3 module prometheus_client missing (Debian: python3-prometheus-client)",
          file=sys.stderr)
    sys.exit(77)

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(\{{(?:{LABEL}(?:,{LABEL})*,?)?\}})? (\S+)( -?[0-9]+)?$")
HELP = re.compile(rf"^# HELP ({NAME}) (.*)$")
TYPE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")
SUFFIXES = {
    "counter": ("",),
    "gauge": ("",),
    "untyped": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}
RESERVED = ("_total", "_created", "_count", "_sum", "_bucket", "_info")


def check_lines(text, problems):
    """Strict line-level check of the 0.0.4 text format; returns {family: type}."""
    types, helps, done = {}, set(), set()
    current = None
    if not text.endswith("\n"):
        problems.append("exposition does not end with a newline")
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if not line:
            problems.append(f"{where}: empty line")
            continue
        if line.startswith("#"):
            m = HELP.match(line) or TYPE.match(line)
            if not m:
                problems.append(f"{where}: not a HELP or TYPE line")
                continue
            name = m.group(1)
            if name != current:
                if current is not None:
                    done.add(current)
                if name in done:
                    problems.append(f"{where}: family {name} appears twice")
                current = name
            if line.startswith("# HELP"):
                if name in helps:
                    problems.append(f"{where}: second HELP for {name}")
                helps.add(name)
            else:
                if name in types:
                    problems.append(f"{where}: second TYPE for {name}")
                types[name] = m.group(2)
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append(f"{where}: not a sample line")
            continue
        name, value = m.group(1), m.group(3)
        try:
            float(value)
        except ValueError:
            problems.append(f"{where}: value {value!r} is not a number")
        if current is None or current not in types:
            problems.append(f"{where}: sample before its family's TYPE")
            continue
        if name not in (current + s for s in SUFFIXES[types[current]]):
            problems.append(f"{where}: sample {name} does not belong to {types[current]} {current}")
    for name in types:
        if name not in helps:
            problems.append(f"family {name} has no HELP")
    return types


def check_names(types, problems):
    for name, kind in types.items():
        if kind == "counter" and not name.endswith("_total"):
            problems.append(f"counter {name} does not end in _total")
        if kind != "counter" and name.endswith("_total"):
            problems.append(f"{kind} {name} ends in _total (reserved for counters)")
        for suffix in RESERVED:
            if name + suffix in types:
                problems.append(f"families {name} ({kind}) and {name + suffix} ({types[name + suffix]}) "
                                "collide under OpenMetrics")


def as_openmetrics(text, types):
    """The 0.0.4 text as OpenMetrics: counter families are named without _total."""
    out = []
    for line in text.splitlines():
        m = HELP.match(line) or TYPE.match(line)
        if m and types.get(m.group(1)) == "counter" and m.group(1).endswith("_total"):
            line = line.replace(m.group(1), m.group(1)[: -len("_total")], 1)
        out.append(line)
    return "\n".join(out) + "\n# EOF\n"


def counter_values(text):
    values = {}
    for family in parse_text(text):
        if family.type == "counter":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def main(paths):
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    ok = True
    previous = None
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        problems = []
        types = check_lines(text, problems)
        check_names(types, problems)
        try:
            families = list(parse_text(text))
            if len(families) != len(types):
                problems.append(f"text parser read {len(families)} families, TYPE lines name {len(types)}")
        except Exception as e:  # the parser raises plain ValueErrors and friends
            problems.append(f"text-format parser: {e!r}")
        try:
            om = list(parse_openmetrics(as_openmetrics(text, types)))
            if len(om) != len(types):
                problems.append(f"OpenMetrics parser read {len(om)} families, TYPE lines name {len(types)}")
        except Exception as e:
            problems.append(f"OpenMetrics parser: {e!r}")
        if not problems:
            values = counter_values(text)
            for key, value in values.items():
                if math.isnan(value) or value < 0:
                    problems.append(f"counter {key} is {value}")
            if previous is not None:
                for key, before in previous.items():
                    after = values.get(key)
                    if after is None:
                        problems.append(f"counter {key} disappeared")
                    elif after < before:
                        problems.append(f"counter {key} went down: {before} -> {after}")
            previous = values
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        ok = ok and not problems
        if ok:
            print(f"{path}: {len(types)} families OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
