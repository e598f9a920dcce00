from parsers.text import decode


def test_utf8_is_taken_without_a_flag() -> None:
    assert decode("Müller GmbH".encode()) == ("Müller GmbH", ())


def test_byte_order_mark_is_removed() -> None:
    assert decode(b"\xef\xbb\xbf:20:X") == (":20:X", ())


def test_cp1252_and_cp852_are_told_apart_and_the_guess_is_flagged() -> None:
    for text, encoding in (("Müller Straße, café €5", "cp1252"),
                           ("Zażółć gęślą jaźń Łódź", "cp852")):
        decoded, flags = decode(text.encode(encoding))
        assert decoded == text
        assert [f.code for f in flags] == ["encoding_guessed"]
        assert encoding in flags[0].message


def test_a_declared_charset_wins() -> None:
    decoded, flags = decode("Łódź".encode("iso-8859-2"), declared="iso-8859-2")
    assert (decoded, flags) == ("Łódź", ())
