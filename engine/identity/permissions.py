"""Permissions, data scopes and the built-in roles (三员分立).

A role is a set of permissions plus a data scope. A grant (`user_roles`) gives a role to a
person, optionally for one org unit; the scope then reaches:

    self                  only the holder's own records
    org                   the grant's org unit (or the holder's own department and branch)
    org_and_descendants   that org unit and everything under it
    all                   the whole installation

三员分立 (separation of the system, security and audit administrators, 《信息安全等级保护》
practice): `sysadmin` runs accounts and configuration but can neither read the audit log nor
act on business; `secadmin` manages roles, grants and the security policy; `auditor` only
reads the audit log. One person never holds two of them, nor one of them with a business role.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import Conflict

DATA_SCOPES = ("self", "org", "org_and_descendants", "all")

PERMISSIONS: dict[str, str] = {
    "org.read": "查看组织机构",
    "org.write": "维护组织机构、职务与分管",
    "user.read": "查看人员档案",
    "user.write": "维护人员档案",
    "user.unmask": "查看完整的身份证号和手机号（留痕）",
    "user.import": "批量导入人员与组织",
    "user.export": "导出人员与组织",
    "account.write": "创建、停用账号，重置密码",
    "account.unlock": "解除账号锁定",
    "role.read": "查看角色",
    "role.write": "维护角色与授权",
    "policy.write": "维护安全策略（口令、锁定、会话、脱敏规则）",
    "config.write": "维护系统配置",
    "audit.read": "查阅审计日志",
    "process.design": "设计与发布流程和表单",
    "process.start": "发起流程",
    "task.act": "办理待办",
    "instance.read": "查看本组织的流程实例",
    "instance.admin": "管理本组织的流程实例（撤销，附原因）",
    "delegation.manage": "为他人设置委托",
}


@dataclass(frozen=True)
class BuiltinRole:
    key: str
    name: str
    data_scope: str
    permissions: tuple[str, ...]
    description: str


BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole("sysadmin", "系统管理员", "all",
                ("org.read", "org.write", "user.read", "user.write", "user.import", "user.export", "account.write",
                 "account.unlock", "role.read", "config.write"),
                "三员之一：管理账号、组织与系统配置；不能查阅审计日志，不能办理业务"),
    BuiltinRole("secadmin", "安全保密管理员", "all",
                ("role.read", "role.write", "policy.write", "user.read", "account.unlock"),
                "三员之一：管理角色、授权与安全策略"),
    BuiltinRole("auditor", "安全审计员", "all", ("audit.read",),
                "三员之一：只能查阅审计日志"),
    BuiltinRole("designer", "流程设计员", "org_and_descendants",
                ("process.design", "process.start", "task.act", "org.read"),
                "设计、校验和发布流程与表单"),
    BuiltinRole("org_admin", "党务工作者", "org_and_descendants",
                ("org.read", "org.write", "user.read", "user.write", "user.unmask", "user.import", "user.export",
                 "instance.read", "instance.admin", "process.start", "task.act", "delegation.manage"),
                "维护本组织及下级组织的组织机构、党员档案，查看本组织的流程"),
    BuiltinRole("staff", "普通用户", "self", ("process.start", "task.act", "org.read"),
                "发起流程、办理自己的待办"),
)
BUILTIN = {r.key: r for r in BUILTIN_ROLES}
ADMIN_ROLES = ("sysadmin", "secadmin", "auditor")
# Permissions only the three administrators may hold: a custom role mixing them with business
# permissions would undo the separation.
ADMIN_ONLY = frozenset({"account.write", "role.write", "policy.write", "config.write", "audit.read"})
BUSINESS = frozenset({"process.start", "task.act", "process.design", "instance.admin"})


def check_separation(role_permissions: dict[str, set[str]]) -> None:
    """Refuse a set of roles for one person that breaks 三员分立.

    `role_permissions` maps each role the person would hold to its permissions."""
    admin = [k for k in role_permissions if k in ADMIN_ROLES]
    if len(admin) > 1:
        names = "、".join(BUILTIN[k].name for k in admin)
        raise Conflict(f"三员分立：同一人不能同时担任{names}")
    if admin:
        business = sorted(k for k, perms in role_permissions.items()
                          if k not in ADMIN_ROLES and perms & (BUSINESS | ADMIN_ONLY))
        if business:
            raise Conflict(f"三员分立：{BUILTIN[admin[0]].name}不能同时拥有业务角色 {', '.join(business)}")


def check_role_definition(key: str, permissions: set[str], data_scope: str) -> None:
    """Refuse a custom role with unknown permissions or one that mixes admin and business duties."""
    unknown = sorted(permissions - PERMISSIONS.keys())
    if unknown:
        raise Conflict(f"未知权限：{', '.join(unknown)}")
    if data_scope not in DATA_SCOPES:
        raise Conflict(f"未知数据范围：{data_scope}")
    if key not in ADMIN_ROLES and permissions & ADMIN_ONLY:
        raise Conflict(f"三员分立：自定义角色不能包含 {', '.join(sorted(permissions & ADMIN_ONLY))}，"
                       "这些权限只属于系统管理员、安全保密管理员和安全审计员")
