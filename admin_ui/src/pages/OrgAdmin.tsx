// 组织管理 (/org): the org trees with their units' people, positions and 分管; roles and grants;
// delegations; the Excel import with its row-by-row dry-run report and the export. What each part
// offers follows the person's permissions (src/org/access.ts); the server checks every call again.
import { Link } from "react-router-dom";
import { Result, Tabs } from "antd";
import type { Me } from "../api";
import { useUrlFilters } from "../hooks";
import { useT } from "../i18n";
import { orgAccess } from "../org/access";
import { OrgTreePane } from "./org/OrgTreePane";
import { RolesTab } from "./org/RolesTab";
import { DelegationsTab } from "./org/DelegationsTab";
import { ImportExport } from "./org/ImportExport";

export function OrgAdmin({ me }: { me: Me }) {
  const t = useT();
  const { get, setParams } = useUrlFilters();
  const access = orgAccess(me.permissions);
  if (!access.page)
    return (
      <Result status="403" title={t("没有访问权限")} data-testid="org-forbidden"
              subTitle={t("组织管理只对系统管理员、安全保密管理员和党务工作者开放")}
              extra={<Link to="/">{t("返回")}</Link>} />
    );
  const views = [
    ...(access.tree ? [{ key: "tree", label: t("组织与人员"), children: <OrgTreePane me={me} access={access} /> }] : []),
    ...(access.roles ? [{ key: "roles", label: t("角色与授权"), children: <RolesTab access={access} canReadOrgs={me.permissions.includes("org.read")} /> }] : []),
    ...(access.delegations ? [{ key: "delegations", label: t("委托"), children: <DelegationsTab me={me} access={access} /> }] : []),
    ...(access.importing || access.exporting ? [{ key: "io", label: t("导入导出"), children: <ImportExport access={access} /> }] : []),
  ];
  const view = views.some((v) => v.key === get("view")) ? get("view")! : views[0].key;
  return (
    <Tabs activeKey={view} items={views} destroyOnHidden data-testid="org-views"
          // Each view keeps its own URL state (the tree its selected unit and tab); switching starts afresh.
          onChange={(k) => setParams(new URLSearchParams({ view: k }), { replace: true })} />
  );
}
