"""The project lifecycle's rules (../shared/domain/rules.md §6) as tested functions; the ones a
gateway or guard needs are script helpers (prefixed `pl_`).

- §6.2 [S] 概算 vs 估算: the unit reports and re-submits when the 概算 exceeds the approved 估算 by
  more than a ratio (setting `estimate_overrun_limit`, 0.10): `pl_exceeds(估算, 概算, ratio)`.
- §6.2 [C] 招标 (国家发改委令第16号): `pl_tender_required(类别, 单项合同估算, 预算资金, 总投资)`.
- §6.3 [U] deviation warning: `|actual − plan| / plan > threshold` (setting `deviation_threshold`,
  0.10), the plan being the time-proportional schedule (序时进度): `assess(...)`.

Money and ratios are compared in decimal, so 110 against 100 with ratio 0.10 is exactly "not over"
(in floats 110 / 100 − 1 is 0.10000000000000009).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from engine.runtime.helpers import as_date, helper

# 国家发改委令第16号《必须招标的工程项目规定》(2018) [C] (rules.md §6.2 row 5, S104)
TENDER_PUBLIC_FUNDS = Decimal(2_000_000)  # 使用预算资金 200 万元以上
TENDER_PUBLIC_SHARE = Decimal("0.10")  # 并且该资金占投资额 10% 以上
TENDER_CONTRACT = {"工程": Decimal(4_000_000), "货物": Decimal(2_000_000), "服务": Decimal(1_000_000)}
TENDER_METHODS = ("公开招标", "邀请招标")
ROUND = 6  # deviations are kept to 6 decimals: float noise never decides a warning


def _dec(value, what: str = "金额") -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ValueError(f"{what}应为数字，而不是 {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{what}应为数字，而不是 {value!r}") from None


@helper
def pl_exceeds(base, actual, ratio) -> bool:
    """Whether `actual` is more than `ratio` above `base` (actual > base × (1 + ratio)), exactly."""
    return _dec(actual) > _dec(base) * (1 + _dec(ratio, "比例"))


@helper
def pl_tender_required(procurement, amount, public_funds, investment) -> bool:
    """Whether a contract must be put out to tender: the project uses ≥ 200 万 of budget funds that
    are ≥ 10% of its investment, and the contract (工程 / 货物 / 服务) reaches its threshold."""
    limit = TENDER_CONTRACT.get(procurement)
    if limit is None:
        return False
    funds, total = _dec(public_funds), _dec(investment)
    if funds < TENDER_PUBLIC_FUNDS or total <= 0 or funds < total * TENDER_PUBLIC_SHARE:
        return False
    return _dec(amount) >= limit


def planned_ratio(start, end, on) -> float:
    """The share of the work planned to be done by day `on` (序时进度): elapsed days over planned
    days, within 0 and 1. A one-day task is all planned on its day."""
    start, end, on = as_date(start), as_date(end), as_date(on)
    if on < start:
        return 0.0
    total = (end - start).days
    if total <= 0 or on >= end:
        return 1.0
    return (on - start).days / total


def deviation(actual, plan) -> float | None:
    """|actual − plan| / plan, rounded; None when nothing was planned yet (plan 0: no ratio)."""
    actual, plan = float(actual), float(plan)
    if plan == 0:
        return None
    return round(abs(actual - plan) / plan, ROUND)


def over(dev: float | None, threshold) -> bool:
    return dev is not None and dev > round(float(threshold), ROUND)


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%".replace(".0%", "%")


def assess(tasks: list[dict], reported: dict[str, dict], on: date, threshold, budget_total) -> dict:
    """A progress report against the plan on day `on`.

    `tasks`: {name, planned_start, planned_end, budget, progress, actual_spend} (the breakdown, with
    the values of the last report); `reported`: task name → {progress (%), spend (元)}; a task not
    reported keeps its last values. The project's planned and actual progress weigh each task by
    its budget (equally when no task has one); planned spend is each budget × its 序时进度. A red
    warning when progress or spend deviates from plan by more than `threshold`, when a task is past
    its planned end (a milestone) and not done, or when spending exceeds the approved budget."""
    items = []
    for t in tasks:
        got = reported.get(t["name"], {})
        ratio = planned_ratio(t["planned_start"], t["planned_end"], on)
        budget = float(t["budget"] or 0)
        progress = float(got.get("progress", t.get("progress") or 0))
        spend = float(got.get("spend", t.get("actual_spend") or 0))
        items.append({
            "task": t["name"], "planned_progress": round(ratio * 100, 2), "progress": progress,
            "planned_spend": round(budget * ratio, 2), "spend": spend, "budget": budget,
            "progress_deviation": deviation(progress, ratio * 100), "spend_deviation": deviation(spend, budget * ratio),
            "late": as_date(t["planned_end"]) < on and progress < 100, "planned_end": str(t["planned_end"])[:10]})
    weights = [i["budget"] for i in items]
    if not any(weights):
        weights = [1.0] * len(items)
    total_w = sum(weights) or 1.0
    planned_progress = sum(w * i["planned_progress"] for w, i in zip(weights, items)) / total_w
    progress = sum(w * i["progress"] for w, i in zip(weights, items)) / total_w
    planned_spend = sum(i["planned_spend"] for i in items)
    spend = sum(i["spend"] for i in items)
    progress_dev, spend_dev = deviation(progress, planned_progress), deviation(spend, planned_spend)
    reasons = []
    if over(progress_dev, threshold):
        reasons.append(f"进度偏离计划 {_pct(progress_dev)}（序时进度 {planned_progress:.1f}%，实际 {progress:.1f}%）")
    if over(spend_dev, threshold):
        reasons.append(f"支出偏离计划 {_pct(spend_dev)}（计划 {planned_spend:.2f} 元，实际 {spend:.2f} 元）")
    for i in items:
        if i["late"]:
            reasons.append(f"里程碑逾期：{i['task']}（计划 {i['planned_end']} 完成，进度 {i['progress']:g}%）")
    if budget_total is not None and _dec(spend) > _dec(budget_total):
        reasons.append(f"实际支出 {spend:.2f} 元超过批准的概算 {float(budget_total):.2f} 元，须先报原审批部门调整概算")
    return {"planned_progress": round(planned_progress, 2), "progress": round(progress, 2),
            "planned_spend": round(planned_spend, 2), "spend": round(spend, 2),
            "progress_deviation": progress_dev, "spend_deviation": spend_dev,
            "threshold": float(threshold), "warning": "red" if reasons else None, "reasons": reasons, "items": items}
