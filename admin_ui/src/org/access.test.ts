import { describe, expect, it } from "vitest";
import { orgAccess } from "./access";

// The built-in roles' permissions (engine/identity/permissions.py BUILTIN_ROLES).
const SYSADMIN = ["org.read", "org.write", "user.read", "user.write", "user.import", "user.export", "account.write",
  "account.unlock", "role.read", "config.write"];
const SECADMIN = ["role.read", "role.write", "policy.write", "user.read", "account.unlock"];
const ORG_ADMIN = ["org.read", "org.write", "user.read", "user.write", "user.unmask", "user.import", "user.export",
  "instance.read", "instance.admin", "process.start", "task.act", "delegation.manage"];
const STAFF = ["process.start", "task.act", "org.read"];
const DESIGNER = ["process.design", "process.start", "task.act", "org.read"];

describe("who gets the 组织管理 page", () => {
  it("opens it to the system administrator with every org section but no role editing", () => {
    const a = orgAccess(SYSADMIN);
    expect(a.page && a.tree && a.editOrg && a.people && a.editPeople && a.accounts && a.unlock).toBe(true);
    expect(a.roles).toBe(true);
    expect(a.editRoles).toBe(false);
    expect(a.importing && a.exporting).toBe(true);
    expect(a.delegations || a.processes).toBe(false); // no tasks of their own to hand on
  });

  it("opens it to a 党务工作者 without accounts or roles", () => {
    const a = orgAccess([...ORG_ADMIN, ...STAFF]);
    expect(a.page && a.tree && a.editOrg && a.editPeople && a.delegations && a.delegationsOfOthers && a.importing).toBe(true);
    expect(a.accounts || a.unlock || a.roles).toBe(false);
  });

  it("gives the security administrator roles and grants, without the tree they may not read", () => {
    const a = orgAccess(SECADMIN);
    expect(a.page && a.roles && a.editRoles).toBe(true);
    expect(a.tree || a.people).toBe(false);
  });

  it("keeps it from staff and designers, who read only their own units", () => {
    expect(orgAccess(STAFF).page).toBe(false);
    expect(orgAccess(DESIGNER).page).toBe(false);
    expect(orgAccess([]).page).toBe(false);
  });
});
