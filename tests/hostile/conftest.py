"""Hostile and broken inputs: shared helpers.

Every test here feeds kgrec something broken, through the library and through the command line
(:func:`kgrec.cli.main`), and checks the outcome: in strict mode one clean error naming the file
(and the line, where there is one), no traceback and no output folder; in lenient mode a graph,
with every dropped record counted by reason in the build report.
"""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from kgrec.cli.main import main
from kgrec.config import InteractionSource
from kgrec.ingest.logs import read_interactions
from kgrec.ingest.sources import BuildReport

ITEM = "http://example.org/item/"
GOOD_TTL = (
    "@prefix ex: <http://example.org/> .\n"
    f"<{ITEM}i1> ex:genre ex:comedy .\n"
    f"<{ITEM}i2> ex:genre ex:drama .\n"
    f"<{ITEM}i3> ex:genre ex:comedy .\n"
)
GOOD_ROWS = ["u1,i1,4,100", "u1,i2,5,200", "u2,i2,3,300", "u2,i3,4,400"]
HEADER = "user,item,rating,timestamp"


def csv_log(*rows: str, header: str = HEADER) -> bytes:
    """A CSV log: the header, then the rows, each ending in a line break."""
    return "".join(line + "\n" for line in (header, *rows)).encode("utf-8")


@dataclass
class Outcome:
    """What one ``kgrec`` command did: exit status, standard output and error."""

    rc: int
    out: str
    err: str


class Workspace:
    """A tmp_path with helpers to write inputs and run builds on them."""

    def __init__(self, tmp_path: Path, capsys):
        self.root = tmp_path
        self.capsys = capsys
        self.graph = tmp_path / "graph"
        self.items = self.file("items.ttl", GOOD_TTL)

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    def cli(self, *argv: str) -> Outcome:
        self.capsys.readouterr()
        rc = main([str(a) for a in argv])
        captured = self.capsys.readouterr()
        return Outcome(rc, captured.out, captured.err)

    def build(self, log: Path, *extra: str, rdf: list[Path] | None = None, lenient: bool = False, force: bool = True) -> Outcome:
        """``kgrec build`` into :attr:`graph`; ``--force`` by default, so that a failure is the
        input's and the earlier graph's survival is what is tested."""
        rdf_args = [a for p in (rdf if rdf is not None else [self.items]) for a in ("--rdf", str(p))]
        flags = [*(["--lenient"] if lenient else []), *(["--force"] if force else [])]
        return self.cli("build", "--interactions", log, *rdf_args, *extra, *flags, "--out", self.graph)

    def read_log(self, path: Path, lenient: bool = False, **options):
        """The library's view: (interaction table, report)."""
        report = BuildReport()
        reader = {"chunk_rows": options.pop("chunk_rows", 2)}  # tiny chunks: every test crosses chunk borders
        if "max_line_bytes" in options:
            reader["max_line_bytes"] = options.pop("max_line_bytes")
        table = read_interactions(InteractionSource(path=str(path), **options), report, lenient=lenient, **reader)
        return table, report

    # module-level helpers, reachable from the tests through the fixture
    csv = staticmethod(lambda *rows, header=HEADER: csv_log(*rows, header=header))
    good_rows = GOOD_ROWS
    item_iri = ITEM

    def clean_error(self, outcome: "Outcome", *fragments: str, line: int | None = None) -> str:
        return assert_clean_error(outcome, self, *fragments, line=line)

    dropped = staticmethod(lambda report, source="interactions": dropped(report, source))
    report_lines = staticmethod(lambda outcome: report_lines(outcome))

    def leftovers(self) -> list[str]:
        """Anything a build left beside the output folder: the folder itself or a temporary."""
        return sorted(p.name for p in self.root.iterdir() if p.name == "graph" or p.name.startswith(".graph"))


@pytest.fixture
def ws(tmp_path, capsys) -> Workspace:
    return Workspace(tmp_path, capsys)


def assert_clean_error(outcome: Outcome, ws: Workspace, *fragments: str, line: int | None = None) -> str:
    """A strict failure: status 2, one ``kgrec: error:`` line naming what it should, nothing written."""
    assert outcome.rc == 2, outcome.err or outcome.out
    message = outcome.err.strip()
    assert message.startswith("kgrec: error: "), message
    assert "\n" not in message and "Traceback" not in outcome.err, outcome.err
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    if line is not None:
        assert f", line {line}:" in message, message
    assert ws.leftovers() == [], ws.leftovers()
    return message


def dropped(report: BuildReport, source: str = "interactions") -> dict[str, int]:
    """``{reason: count}`` of the drops a report holds for ``source``."""
    counts = report.counts.get(source, {})
    return {k.removeprefix("dropped: "): v for k, v in counts.items() if k.startswith("dropped: ")}


def report_lines(outcome: Outcome) -> list[str]:
    """The ``dropped: ...`` lines a build printed, whitespace squeezed."""
    return [" ".join(line.split()) for line in outcome.out.splitlines() if "dropped:" in line]


class Listener:
    """An HTTP server on 127.0.0.1 that counts every connection made to it.

    It answers like a real server (a JSON-LD context, a DTD) so that a client that did connect
    would get something to use: the tests prove kgrec never connects, not that it fails to.
    """

    def __init__(self):
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b'{"@context": {"ex": "http://example.org/"}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def verify_request(self, request, client_address):
                counter.connections += 1
                return True

        self.connections = 0
        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()
