"""Ragged rows (too many fields): strict names the line; lenient drops and counts them."""

import pytest

from kgrec.errors import KgrecError


def test_strict_names_the_line_and_the_field_counts(ws):
    path = ws.file("log.csv", ws.csv("u1,i1,4,100", "u2,i2,5,200,extra,more", "u3,i3,4,300"))
    with pytest.raises(KgrecError) as e:
        ws.read_log(path)
    assert str(e.value).startswith(f"{path}, line 3:") and "expected 4, saw 6" in str(e.value)
    ws.clean_error(ws.build(path), "log.csv", "wrong number of fields: expected 4, saw 6", line=3)


def test_strict_reports_the_first_bad_record_even_across_chunks(ws):
    rows = [f"u{k},i{k % 3 + 1},4,{k}" for k in range(7)]
    rows[2] = "u2,i3,oops,2"  # line 4: a bad rating, before the ragged row of line 7
    rows[5] = "u5,i3,4,5,extra"
    with pytest.raises(KgrecError, match=r"line 4: non-numeric rating"):
        ws.read_log(ws.file("log.csv", ws.csv(*rows)))


def test_short_rows_are_empty_fields(ws):
    path = ws.file("log.csv", ws.csv("u1,i1,4,100", "u2"))
    ws.clean_error(ws.build(path), "log.csv", "empty item id in column 'item'", line=3)


def test_lenient_drops_and_counts(ws):
    path = ws.file("log.csv", ws.csv("u1,i1,4,100", "u2,i2,5,200,x", "u2,i3,4,300", "u3,i1,1,2,3,4", "u3"))
    table, report = ws.read_log(path, lenient=True)
    assert table[["user", "item"]].values.tolist() == [["u1", "i1"], ["u2", "i3"]]
    assert ws.dropped(report) == {"wrong number of fields": 2, "empty item id": 1}
    assert report.counts["interactions"]["read"] == 5
    outcome = ws.build(path, lenient=True)
    assert outcome.rc == 0, outcome.err
    assert ws.report_lines(outcome) == ["dropped: empty item id 1", "dropped: wrong number of fields 2"]
    assert "dropped: wrong number of fields" in (ws.graph / "report.txt").read_text()


def test_unterminated_quote_names_its_line(ws):
    path = ws.file("log.csv", ws.csv("u1,i1,4,100", 'u2,"i2,5,200', "u3,i3,4,300"))
    for lenient in (False, True):
        ws.clean_error(ws.build(path, lenient=lenient), "log.csv", "never closes", line=3)


def test_a_long_first_record_does_not_shift_the_columns(ws):
    """pandas would take the extra leading fields of a long first record for an index."""
    path = ws.file("log.csv", "user,item\nu1,i1,x,y\nu2,i2\n")
    with pytest.raises(KgrecError, match=r"line 2: wrong number of fields: expected 2, saw 4"):
        ws.read_log(path)
    table, report = ws.read_log(path, lenient=True)
    assert table[["user", "item"]].values.tolist() == [["u2", "i2"]]
    assert ws.dropped(report) == {"wrong number of fields": 1}


def test_every_record_too_long(ws):
    path = ws.file("log.csv", "user,item\nu1,i1,x\nu2,i2,y\n")
    ws.clean_error(ws.build(path), "log.csv", "wrong number of fields", line=2)
    ws.clean_error(ws.build(path, lenient=True), "no interactions left to use", "wrong number of fields 2")


def test_unterminated_quote_in_the_first_record(ws):
    path = ws.file("log.csv", 'user,item\nu1,"')
    for lenient in (False, True):
        ws.clean_error(ws.build(path, lenient=lenient), "log.csv", "never closes", line=2)
