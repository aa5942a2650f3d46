// What the 组织管理 page offers a signed-in person, from the permissions of /api/me
// (engine/identity/permissions.py). Every 普通用户 holds org.read (to see their own units), so
// org.read alone does not open the page: it takes a managing permission as well.

export interface OrgAccess {
  /** The org tree with its units' details, positions and 分管 (org.read plus org.write or user.read). */
  tree: boolean;
  /** Create, edit, move and dissolve units; assign and end positions; add and remove 分管. */
  editOrg: boolean;
  /** The people of a unit (一人一档). */
  people: boolean;
  editPeople: boolean;
  /** Give a new person a login, reset a password, disable an account (account.write). */
  accounts: boolean;
  unlock: boolean;
  roles: boolean;
  editRoles: boolean;
  /** 委托: one's own delegations, for those who act on tasks (the three administrators do not). */
  delegations: boolean;
  /** Delegations of everyone in scope, and new ones on their behalf (delegation.manage). */
  delegationsOfOthers: boolean;
  /** Names of the processes a delegation may be limited to (the catalogue needs process.start or .design). */
  processes: boolean;
  importing: boolean;
  exporting: boolean;
  /** Whether the page (and its menu item) is there at all. */
  page: boolean;
}

export function orgAccess(permissions: readonly string[]): OrgAccess {
  const has = (p: string) => permissions.includes(p);
  const tree = has("org.read") && (has("org.write") || has("user.read"));
  const roles = has("role.read");
  const importing = has("user.import");
  const exporting = has("user.export");
  return {
    tree,
    editOrg: tree && has("org.write"),
    people: tree && has("user.read"),
    editPeople: tree && has("user.write"),
    accounts: has("account.write"),
    unlock: has("account.unlock"),
    roles,
    editRoles: roles && has("role.write"),
    delegations: has("task.act") || has("delegation.manage"),
    delegationsOfOthers: has("delegation.manage"),
    processes: has("process.start") || has("process.design"),
    importing,
    exporting,
    page: tree || roles || importing || exporting,
  };
}
