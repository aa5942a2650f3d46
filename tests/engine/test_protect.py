"""Personal data at rest: ID number rules, encryption, key rotation."""
from __future__ import annotations

from datetime import date

import pytest

from engine import Database, InvalidInput, People, PersonCreate
from engine.identity.protect import FieldCipher, Masker, check_id_number, make_id_number
from engine.models import User
from engine.setup import init
from tests.conftest import make_settings


def test_id_numbers_are_checked_like_the_national_standard():
    good = make_id_number("110101", date(1990, 3, 7), 123)
    assert check_id_number(good.lower()) == good
    assert check_id_number("11010519491231002X") == "11010519491231002X"  # GB 11643 example
    feb30 = "11010119900230123"
    feb30 += "10X98765432"[sum(int(d) * w for d, w in zip(feb30, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4,
                                                                   2))) % 11]
    for bad, reason in ((good[:-1] + ("1" if good[-1] != "1" else "2"), "校验位"), ("1101011990030712", "18位"),
                        (feb30, "出生日期")):
        with pytest.raises(InvalidInput) as exc:
            check_id_number(bad)
        assert reason in exc.value.message
        assert bad not in exc.value.message  # the refused value is never echoed


def test_masks_keep_region_and_last_four_and_mask_odd_values_whole():
    m = Masker({})
    assert m.mask("id_number", "11010519491231002X") == "110105********002X"
    assert m.mask("phone", "13812345678") == "138****5678"
    assert m.mask("phone", "0101234") == "*******"


def test_ciphertext_is_bound_to_its_column_and_key():
    a, b = FieldCipher("key-a"), FieldCipher("key-b")
    token = a.encrypt("id_number", "11010519491231002X")
    assert a.decrypt("id_number", token) == "11010519491231002X"
    with pytest.raises(ValueError):
        a.decrypt("phone", token)  # copied into another column
    with pytest.raises(ValueError):
        b.decrypt("id_number", token)
    assert FieldCipher("key-b", ["key-a"]).decrypt("id_number", token) == "11010519491231002X"


def test_rotating_the_data_key(sqlite_url):
    old = make_settings(sqlite_url, data_key="old-key-2025")
    db = Database(sqlite_url)
    init(db, old, demo=True)
    number = make_id_number("310104", date(1988, 8, 8), 555)
    People(db, old).create(None, PersonCreate(username="wangwu", display_name="王五", id_number=number))

    rotated = make_settings(sqlite_url, data_key="new-key-2026", data_key_previous="old-key-2025")
    people = People(db, rotated)
    result = people.rekey()
    assert result["records"] >= 12
    # after the rekey the new key alone opens everything, the old one nothing
    new_only = People(db, make_settings(sqlite_url, data_key="new-key-2026"))
    wangwu = new_only.id_of("wangwu")
    with db.read() as s:
        token = s.get(User, wangwu).id_number_enc
    assert new_only.cipher.decrypt("id_number", token) == number
    with pytest.raises(ValueError):
        FieldCipher("old-key-2025").decrypt("id_number", token)
    # and lookups by hash still find the person: a second record with the same number is refused
    with pytest.raises(InvalidInput) as exc:
        new_only.create(None, PersonCreate(username="wangwu2", display_name="王五", id_number=number))
    assert exc.value.errors[0].field == "id_number"
