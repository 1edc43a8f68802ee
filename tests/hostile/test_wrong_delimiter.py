"""A wrong delimiter: the header comes out as one column, and the message names the right one."""

import pytest

from kgrec.errors import KgrecError


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    "name, sep, advice",
    [
        ("log.csv", ";", "interactions.delimiter = ';'"),
        ("log.csv", "\t", "--format tsv"),
        ("log.csv", "|", "interactions.delimiter = '|'"),
        ("log.tsv", ",", "--format csv"),
    ],
)
def test_header_split_with_the_wrong_delimiter(ws, name, sep, advice, lenient):
    path = ws.file(name, "".join(r.replace(",", sep) + "\n" for r in ["user,item,rating", "u1,i1,4"]))
    with pytest.raises(KgrecError, match="wrong delimiter"):
        ws.read_log(path, lenient=lenient)
    message = ws.clean_error(ws.build(path, lenient=lenient), name, "wrong delimiter?", advice, line=1)
    assert "single column" in message


def test_the_advice_works(ws):
    path = ws.file("log.csv", "user\titem\nu1\ti1\nu2\ti2\n")
    assert ws.build(path).rc == 2
    assert ws.build(path, "--format", "tsv").rc == 0


def test_header_right_but_records_with_another_delimiter(ws):
    path = ws.file("log.csv", "user,item\nu1;i1\n")
    ws.clean_error(ws.build(path), "log.csv", "empty item id", line=2)


def test_declared_delimiter_in_the_spec(ws):
    log = ws.file("log.csv", "user;item\nu1;i1\nu2;i2\n")
    spec = ws.file(
        "spec.toml",
        f'[interactions]\npath = "{log}"\ndelimiter = ";"\n[rdf]\npaths = ["{ws.items}"]\n',
    )
    outcome = ws.cli("build", "--spec", spec, "--out", ws.graph)
    assert outcome.rc == 0, outcome.err
