"""Sample organisations and people in the import workbook's layout: for trying djflow at the
scale of a real district, for tests and for bench/org.py. Deterministic for a given seed."""
from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from engine.identity.protect import make_id_number
from engine.org.workbook import HEADERS, IN_CHARGE_SHEET, ORG_SHEET, PEOPLE_SHEET, POSITION_SHEET

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚"
            "卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥玲芬燕彬鹏辉建国志明海燕晓东春梅丹宁博文"
REGIONS = ("110101", "110102", "110105", "310104", "320102", "330106", "440305", "510104")
STATUSES = ("正式党员",) * 14 + ("预备党员", "发展对象", "入党积极分子", "申请人", "非党员")
DEPARTMENTS = ("办公室", "财务科", "人事科", "法规科", "规划科", "信息中心", "机关党委办公室", "后勤服务中心")


def sample_rows(branches: int, members: int, *, seed: int = 7) -> dict[str, list[list]]:
    """Rows per sheet: committees of about 20 branches each, units with departments, members
    spread over the branches, a secretary per branch and a head per department, and 分管."""
    rnd = random.Random(seed)
    rows: dict[str, list[list]] = {sheet: [] for sheet in HEADERS}
    committees = max(1, branches // 20)
    units = max(1, branches // 30)
    for c in range(committees):
        rows[ORG_SHEET].append([f"dw{c:03d}", f"第{c + 1}机关党委", "党委", "", c, "2015-01-01", "是"])
    branch_codes = []
    for b in range(branches):
        code = f"dw{b % committees:03d}-zb{b:05d}"
        branch_codes.append(code)
        rows[ORG_SHEET].append([code, f"第{b + 1}党支部", "党支部", f"dw{b % committees:03d}", b, "2018-06-01", ""])
    dept_codes = []
    for u in range(units):
        rows[ORG_SHEET].append([f"dw-u{u:03d}", f"第{u + 1}局", "单位", "", u, "", ""])
        for d, name in enumerate(DEPARTMENTS):
            code = f"dw-u{u:03d}-d{d}"
            dept_codes.append(code)
            rows[ORG_SHEET].append([code, name, "科室", f"dw-u{u:03d}", d, "", ""])
    start = date(1960, 1, 1)
    for m in range(members):
        name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) + (rnd.choice(GIVEN) if rnd.random() < 0.6 else "")
        # (region, birth date, order code) differs for every m, so no two sample people share
        # an ID number (一人一档 would refuse the workbook).
        birth = start + timedelta(days=(m // 8000) * 997 % 15330)
        rows[PEOPLE_SHEET].append([
            f"M{m:07d}", f"m{m:07d}", name, make_id_number(REGIONS[m % 8], birth, (m // 8) % 1000),
            f"1{rnd.choice('3456789')}{m:09d}"[:11], dept_codes[m % len(dept_codes)],
            branch_codes[m % len(branch_codes)], rnd.choice(STATUSES),
            (birth + timedelta(days=365 * 25 + rnd.randrange(3000))).isoformat(), ""])
    for b, code in enumerate(branch_codes):  # member b sits in branch b (round robin above)
        if b < members:
            rows[POSITION_SHEET].append([code, "书记", f"M{b:07d}", "2024-07-01", ""])
    for d, code in enumerate(dept_codes):
        member = len(branch_codes) + d
        if member < members:
            rows[POSITION_SHEET].append([code, "科长", f"M{member:07d}", "2023-01-01", ""])
            rows[IN_CHARGE_SHEET].append([f"M{member:07d}", dept_codes[(d + 1) % len(dept_codes)]])
    return rows


def write_sample(path: Path, branches: int, members: int, *, seed: int = 7) -> dict[str, int]:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    counts = {}
    for sheet, rows in sample_rows(branches, members, seed=seed).items():
        ws = wb.create_sheet(sheet)
        ws.append(HEADERS[sheet])
        for row in rows:
            ws.append(row)
        counts[sheet] = len(rows)
    wb.save(path)
    return counts
