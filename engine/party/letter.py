"""《中国共产党党员组织关系介绍信》 (rules.md §2.2 F-T1) as a PDF, and the numerals it is written in.

The letter has three parts on one sheet: 存根 (kept by the sender, the 回执 is pasted onto it), 介绍信
(carried by the member to the receiver) and 回执 (sent back by the final receiving 基层党委 within a
month, R6). The fill-in notes of 组通字〔2006〕45号 (S41, S42) say the serial number is the sender's,
the signature block carries the seal only (no sender name), and "党费交至的年、月以及介绍信的有效期均
要采用大写的数字表示，以免涂改": so the dues month and the validity are written in the anti-alteration
capitals of financial writing (壹贰叁…拾佰仟, `capital_number`, with 壹拾 for ten so that nothing can
be written in front of it), while the dates are written the way documents date themselves, in
Chinese numerals with 〇 (二〇二六年十二月三日, `chinese_date`).

The PDF needs a font with Chinese glyphs. It is looked up when a letter is made, never shipped:
DJFLOW_PDF_FONT (a .ttf/.otf/.ttc path) when set, else the Debian packages' files (fonts-arphic-uming,
then fonts-noto-cjk, …), else fontconfig's choice for zh-cn. Without one, `FontMissing` names what to install.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date

from engine.runtime.helpers import as_date

CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"
SMALL_DIGITS = "〇一二三四五六七八九"
_CAPITAL_UNITS = ("", "拾", "佰", "仟")
MAX_CAPITAL = 10**8 - 1

# Debian packages' files, best first: (path, the face wanted in a collection). TrueType outlines
# first: fpdf2 writes them with the Identity-H encoding, whose text every reader extracts; the
# CID-keyed CFF of Noto CJK gets an embedded encoding CMap, which poppler reads but pypdf only
# partly and pdfminer not at all (the letter looks the same either way).
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/arphic/uming.ttc", "AR PL UMing CN"),  # fonts-arphic-uming (明体)
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", "Noto Serif CJK SC"),  # fonts-noto-cjk
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),  # fonts-noto-cjk
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "WenQuanYi Zen Hei"),  # fonts-wqy-zenhei
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "WenQuanYi Micro Hei"),  # fonts-wqy-microhei
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", None),  # fonts-droid-fallback
)
INSTALL_HINT = ("请安装 Debian 软件包 fonts-arphic-uming 或 fonts-noto-cjk（apt-get install -y fonts-arphic-uming），"
                "或将 DJFLOW_PDF_FONT 设为含中文字形的字体文件（.ttf/.otf/.ttc）路径")
_PROBE = "中国共产党党员组织关系介绍信贰〇"  # glyphs a usable font must have
_SIMPLIFIED = re.compile(r"\b(SC|CN|GB|Hans)\b")  # the face of a collection meant for 简体中文


class FontMissing(ValueError):
    """No font with Chinese glyphs was found (the message says what to install or set)."""


# -- numerals ----------------------------------------------------------------------------------
def _group(n: int) -> str:
    """0 < n < 10000 in capitals, inner zeros as one 零, trailing zeros dropped."""
    out, zero = [], False
    for power in (3, 2, 1, 0):
        d = n // 10**power % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(CAPITAL_DIGITS[d] + _CAPITAL_UNITS[power])
    return "".join(out)


def capital_number(n: int) -> str:
    """An integer 0 … 99 999 999 in the capitals of financial writing: 0 零, 10 壹拾, 11 壹拾壹,
    20 贰拾, 30 叁拾, 100 壹佰, 101 壹佰零壹, 110 壹佰壹拾, 10001 壹万零壹. Ten keeps its 壹 (壹拾, not
    拾) so that no digit can be written in front of it, which is why the letter uses capitals."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"大写数字须为整数，而不是 {n!r}")
    if not 0 <= n <= MAX_CAPITAL:
        raise ValueError(f"大写数字须在 0 到 {MAX_CAPITAL} 之间，而不是 {n}")
    if n == 0:
        return "零"
    high, low = divmod(n, 10000)
    if not high:
        return _group(low)
    text = _group(high) + "万"
    if low:
        text += ("零" if low < 1000 else "") + _group(low)
    return text


def capital_digits(n: int) -> str:
    """A year digit by digit in capitals: 2026 → 贰零贰陆."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"年份须为非负整数，而不是 {n!r}")
    return "".join(CAPITAL_DIGITS[int(c)] for c in str(n))


def parse_month(value) -> tuple[int, int]:
    """'2026-11' (or a date / ISO date text, whose month counts) → (2026, 11)."""
    if isinstance(value, date):
        return value.year, value.month
    text = str(value or "")
    try:
        year, month = int(text[:4]), int(text[5:7])
    except ValueError:
        raise ValueError(f"年月应为 YYYY-MM，而不是 {value!r}") from None
    if len(text) < 7 or text[4] != "-" or not 1 <= month <= 12:
        raise ValueError(f"年月应为 YYYY-MM，而不是 {value!r}")
    return year, month


def capital_year_month(value) -> str:
    """'2026-11' → 贰零贰陆年壹拾壹月 (党费已交到 X年X月, R5)."""
    year, month = parse_month(value)
    return f"{capital_digits(year)}年{capital_number(month)}月"


def _small(n: int) -> str:
    """1 … 99 as dates write them: 3 三, 10 十, 11 十一, 20 二十, 31 三十一."""
    if not 0 < n < 100:
        raise ValueError(f"月、日须在 1 到 99 之间，而不是 {n}")
    tens, ones = divmod(n, 10)
    return (("" if tens == 1 else SMALL_DIGITS[tens]) + "十" if tens else "") + (SMALL_DIGITS[ones] if ones else "")


def chinese_date(value) -> str:
    """A date as documents write it: 2026-12-03 → 二〇二六年十二月三日."""
    d = as_date(value)
    return f"{''.join(SMALL_DIGITS[int(c)] for c in str(d.year))}年{_small(d.month)}月{_small(d.day)}日"


# -- the font ---------------------------------------------------------------------------------
def _face_index(path: str, wanted: str | None) -> int | None:
    """The index of a usable face in `path` (the one named `wanted` in a collection, else the first
    with Chinese glyphs); None when the file has no face with them."""
    from fontTools.ttLib import TTCollection, TTFont

    try:
        if path.lower().endswith((".ttc", ".otc")):
            faces = list(TTCollection(path, lazy=True).fonts)
        else:
            faces = [TTFont(path, lazy=True)]
    except Exception:  # noqa: BLE001 - an unreadable file is simply not usable
        return None
    usable, simplified = [], []
    for i, face in enumerate(faces):
        cmap = face.getBestCmap() or {}
        if all(ord(c) in cmap for c in _PROBE):
            names = {str(r) for r in face["name"].names if r.nameID in (1, 4, 16)} if "name" in face else set()
            if wanted and wanted in names:
                return i
            usable.append(i)
            if any(_SIMPLIFIED.search(n) for n in names):
                simplified.append(i)
    return (simplified or usable or [None])[0]


def _fontconfig() -> tuple[str, int] | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}\t%{index}", ":lang=zh-cn"], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path, _, index = out.partition("\t")
    if not path or not os.path.isfile(path):
        return None
    found = _face_index(path, None)
    return (path, found) if found is not None else None


@functools.lru_cache(maxsize=8)
def find_font(configured: str | None = None) -> tuple[str, int]:
    """(path, face index) of the font letters are written in; FontMissing names what to do."""
    if configured:
        if not os.path.isfile(configured):
            raise FontMissing(f"DJFLOW_PDF_FONT 指向的字体文件 {configured} 不存在；{INSTALL_HINT}")
        index = _face_index(configured, None)
        if index is None:
            raise FontMissing(f"DJFLOW_PDF_FONT 指向的字体 {configured} 无法读取或不含中文字形；{INSTALL_HINT}")
        return configured, index
    for path, wanted in FONT_CANDIDATES:
        if os.path.isfile(path):
            index = _face_index(path, wanted)
            if index is not None:
                return path, index
    found = _fontconfig()
    if found is not None:
        return found
    raise FontMissing(f"生成党员组织关系介绍信需要中文字体，本机未找到；{INSTALL_HINT}")


# -- the letter -------------------------------------------------------------------------------
@dataclass
class LetterFields:
    serial: str                 # 第__号 (the sender's number)
    name: str
    gender: str | None          # 男 / 女
    age: int | None
    ethnicity: str | None       # __族
    full_member: bool           # 正式 / 预备
    id_number: str | None
    from_org: str               # 组织关系由__
    to_org: str                 # 转到__ / 去__
    heading: str                # 抬头: the receiving party organisation
    sender_committee: str       # the 回执's 抬头: the member's original 基层党委
    dues_paid_to: str           # 'YYYY-MM'
    validity_days: int
    issued_on: date
    member_contact: str | None = None
    sender_address: str | None = None
    sender_phone: str | None = None
    sender_fax: str | None = None
    sender_postcode: str | None = None


BLANK = "________"


def _v(value) -> str:
    return BLANK if value in (None, "") else str(value)


def letter_texts(f: LetterFields) -> dict[str, list[str]]:
    """The words of the three parts (what the PDF prints, part by part)."""
    status = "正式" if f.full_member else "预备"
    issued = chinese_date(f.issued_on)
    stub = [
        f"{f.name}同志系中共{status}党员，组织关系由{f.from_org}转到{f.to_org}。",
        issued,
    ]
    letter = [
        f"{f.heading}：",
        f"{f.name}同志（{_v(f.gender)}），{_v(f.age)}岁，{_v(f.ethnicity)}族，系中共{status}党员，"
        f"身份证号码{_v(f.id_number)}，由{f.from_org}去{f.to_org}，请接转组织关系。"
        f"该同志党费已交到{capital_year_month(f.dues_paid_to)}。",
        f"（有效期{capital_number(int(f.validity_days))}天）",
        "（盖章）",
        issued,
        f"党员联系电话或其他联系方式：{_v(f.member_contact)}",
        f"党员原所在基层党委通讯地址：{_v(f.sender_address)}",
        f"联系电话：{_v(f.sender_phone)}　传真：{_v(f.sender_fax)}　邮编：{_v(f.sender_postcode)}",
    ]
    receipt = [
        f"{f.sender_committee}：",
        f"{f.name}同志的党员组织关系已转达我处，特此回复。",
        "（盖章）",
        "　　年　　月　　日",
        f"经办人：{BLANK}　联系电话：{BLANK}",
        "注：回执联由接收党员组织关系的基层党委在接收党员后一个月内邮寄或传真至党员原所在基层党委。",
    ]
    return {"存根": stub, "介绍信": letter, "回执": receipt}


def render_letter(f: LetterFields, *, font: str | None = None) -> bytes:
    """The letter as a one-page A4 PDF (the three parts, divided by the lines of the 骑缝章)."""
    from fpdf import FPDF
    from fpdf.enums import WrapMode, XPos, YPos

    # fontTools notes each table it drops from the subset (uming.ttc's bitmap "BDF "): not a problem
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
    path, index = find_font(font)
    texts = letter_texts(f)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(20, 14, 20)
    pdf.add_font("cjk", "", path, collection_font_number=index)
    pdf.set_title(f"中国共产党党员组织关系介绍信 第{f.serial}号")
    pdf.set_creator("djflow")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def title(text: str, part: str) -> None:
        top = pdf.get_y()
        pdf.set_font("cjk", size=15)
        pdf.cell(width, 9, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("cjk", size=10)
        pdf.set_xy(pdf.l_margin, top + 1)
        pdf.cell(width, 5, part, align="L")
        pdf.set_xy(pdf.l_margin, top + 9)
        pdf.cell(width, 6, f"第 {f.serial} 号", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def para(text: str, *, align: str = "L", size: float = 11.5, indent: bool = False, gap: float = 1.5) -> None:
        pdf.set_font("cjk", size=size)
        pdf.multi_cell(width, 7.5, ("　　" if indent else "") + text, align=align, wrapmode=WrapMode.CHAR,
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    def seam() -> None:
        y = pdf.get_y() + 3
        pdf.set_dash_pattern(dash=2, gap=1.5)
        pdf.line(pdf.l_margin - 8, y, pdf.w - pdf.r_margin + 8, y)
        pdf.set_dash_pattern()
        pdf.set_font("cjk", size=9)
        pdf.set_xy(pdf.l_margin, y - 2.5)
        label = "（加盖骑缝章）"
        pdf.set_fill_color(255, 255, 255)
        w = pdf.get_string_width(label) + 4
        pdf.set_x((pdf.w - w) / 2)
        pdf.cell(w, 5, label, align="C", fill=True)
        pdf.set_xy(pdf.l_margin, y + 5)

    # 第一联 存根
    title("中国共产党党员组织关系介绍信存根", "第一联")
    stub = texts["存根"]
    para(stub[0], indent=True)
    para(stub[1], align="R")
    box_y = pdf.get_y()
    pdf.set_dash_pattern(dash=1, gap=1)
    pdf.rect(pdf.l_margin + width / 2 - 30, box_y, 60, 14)
    pdf.set_dash_pattern()
    pdf.set_font("cjk", size=10)
    pdf.set_xy(pdf.l_margin, box_y + 4)
    pdf.cell(width, 6, "（贴回执联处）", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(box_y + 15)
    seam()

    # 第二联 介绍信
    title("中国共产党党员组织关系介绍信", "第二联")
    letter = texts["介绍信"]
    para(letter[0])
    para(letter[1], indent=True)
    para(letter[2], indent=True)
    para(letter[3], align="R", gap=0)
    para(letter[4], align="R")
    for line in letter[5:]:
        para(line, size=10.5, gap=0.3)
    seam()

    # 第三联 回执
    title("中国共产党党员组织关系介绍信回执联", "第三联")
    receipt = texts["回执"]
    para(receipt[0])
    para(receipt[1], indent=True)
    para(receipt[2], align="R", gap=0)
    para(receipt[3], align="R")
    para(receipt[4], size=10.5)
    para(receipt[5], size=9.5)
    if pdf.get_y() > pdf.h - 8:
        raise ValueError("介绍信内容超出一页，请缩短组织名称或地址")
    return bytes(pdf.output())
