"""Fails (exit 1) when a pytest log lists a skipped test whose reason is not allow-listed.

Usage: python .ci/check_skips.py PYTEST_LOG .ci/allowed_skips.txt

Reads the "SKIPPED [n] path:line: reason" lines of pytest's short summary (`-ra`, set in
pyproject.toml) and matches each reason against the allow-list's regular expressions (whole
reason; text after "  # " on an allow-list line is the note saying why).
"""

import pathlib
import re
import sys

SKIP_LINE = re.compile(r"^SKIPPED \[(\d+)\] ([^:]+:\d+): (.*)$")


def allowed_patterns(path: pathlib.Path) -> list[re.Pattern]:
    patterns = []
    for line in path.read_text().splitlines():
        pattern = line.split("  # ", 1)[0].strip()
        if pattern and not pattern.startswith("#"):
            patterns.append(re.compile(pattern))
    return patterns


def unexpected_skips(log_text: str, patterns: list[re.Pattern]) -> list[str]:
    bad = []
    for line in log_text.splitlines():
        match = SKIP_LINE.match(line.strip())
        if match and not any(p.fullmatch(match.group(3)) for p in patterns):
            bad.append(line.strip())
    return bad


def main(argv: list[str]) -> int:
    log_path, allow_path = map(pathlib.Path, argv)
    bad = unexpected_skips(log_path.read_text(errors="replace"), allowed_patterns(allow_path))
    for line in bad:
        print(f"CI: unexpected skip: {line}", file=sys.stderr)
    if bad:
        print(f"CI: {len(bad)} skip line(s) not allowed by {allow_path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
