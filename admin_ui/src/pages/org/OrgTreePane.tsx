// The org tree on the left, scoped to what the person may read; the selected unit on the right with
// its details and the tabs 人员, 职务, 分管, 变更记录, 设置检查.
import { useCallback, useEffect, useMemo, useState } from "react";
import { Alert, Button, Card, Col, Empty, Input, Row, Skeleton, Space, Switch, Tabs, Tag, Tooltip, Tree } from "antd";
import { PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { api, type Me } from "../../api";
import { useUrlFilters } from "../../hooks";
import { useT } from "../../i18n";
import type { OrgAccess } from "../../org/access";
import { filterTree, firstSelectable, indexTree } from "../../org/tree";
import { problemText, type OrgNode } from "./shared";
import { UnitChecks, UnitDetails, UnitForm, UnitHistory } from "./UnitPanel";
import { PeopleTab } from "./PeopleTab";
import { InChargeTab, PositionsTab } from "./PositionsTab";

interface Shown {
  key: number;
  title: React.ReactNode;
  selectable: boolean;
  children: Shown[];
}

export function OrgTreePane({ me, access }: { me: Me; access: OrgAccess }) {
  const t = useT();
  const { get, set } = useUrlFilters();
  const [roots, setRoots] = useState<OrgNode[] | null>(null);
  const [error, setError] = useState("");
  const [q, setQ] = useState("");
  const [dissolved, setDissolved] = useState(false);
  const [expanded, setExpanded] = useState<number[]>([]);
  const [creatingRoot, setCreatingRoot] = useState(false);
  const load = useCallback(() => {
    api.get<OrgNode[]>("/org-units/tree", { include_dissolved: dissolved })
      .then((r) => {
        setRoots(r);
        setError("");
        setExpanded([...indexTree(r).byId.keys()]);
      })
      .catch((e) => setError(problemText(e, t)));
  }, [dissolved, t]);
  useEffect(load, [load]);
  const index = useMemo(() => indexTree(roots ?? []), [roots]);
  const selectedId = Number(get("unit")) || undefined;
  const selected = selectedId ? index.byId.get(selectedId) : undefined;
  useEffect(() => {
    // Open on the person's own branch (else department), or the first unit they manage. Only when
    // nothing is chosen: a unit just created is chosen before the reloaded tree holds it.
    if (roots && !selectedId) {
      const first = firstSelectable(roots, [me.branch_id, me.department_id]);
      if (first) set({ unit: String(first.id), tab: undefined });
    }
  }, [roots, selectedId]); // eslint-disable-line react-hooks/exhaustive-deps
  // A search shows the matching units with the units that lead to them, all unfolded.
  const filtered = useMemo(() => filterTree(roots ?? [], q), [roots, q]);
  const unfolded = useMemo(() => [...indexTree(filtered).byId.keys()], [filtered]);
  const shown = useMemo(() => {
    const toShown = (nodes: OrgNode[]): Shown[] => nodes.map((n) => ({
      key: n.id,
      selectable: !n.limited,
      title: (
        <span data-testid={`org-node-${n.code}`} style={n.limited ? { color: "#999" } : undefined}>
          <span>{n.name}</span> <Tag style={{ marginInlineStart: 4 }}>{t(n.kind_name)}</Tag>
          {n.status === "dissolved" && <Tag color="default">{t("已撤销")}</Tag>}
          {n.limited && <Tooltip title={t("上级组织，不在您的管理范围内，仅显示名称")}><span>{t("（仅名称）")}</span></Tooltip>}
        </span>
      ),
      children: toShown((n.children ?? []) as OrgNode[]),
    }));
    return toShown(filtered);
  }, [filtered, t]);
  const searching = q.trim() !== "";
  // Only an installation-wide administrator may add a root; the server refuses anyone else.
  const mayAddRoot = access.editOrg && me.grants.some((g) => g.data_scope === "all");
  // Keyed by unit: another unit's tab starts afresh (its search, page and warnings).
  const tabs = selected && !selected.limited ? [
    ...(access.people ? [{ key: "people", label: t("人员"), children: <PeopleTab key={selected.id} unit={selected} index={index} access={access} /> }] : []),
    { key: "positions", label: t("职务"), children: <PositionsTab key={selected.id} unit={selected} access={access} /> },
    { key: "in-charge", label: t("分管"), children: <InChargeTab key={selected.id} unit={selected} access={access} /> },
    { key: "history", label: t("变更记录"), children: <UnitHistory key={selected.id} unit={selected} index={index} /> },
    { key: "checks", label: t("设置检查"), children: <UnitChecks key={selected.id} unit={selected} /> },
  ] : [];
  return (
    <Row gutter={[12, 12]}>
      <Col xs={24} lg={8} xl={7}>
        <Card size="small" title={t("组织机构")} data-testid="org-tree"
              extra={<Space size={4}>
                {mayAddRoot && <Tooltip title={t("新建顶级组织")}><Button size="small" icon={<PlusOutlined />} onClick={() => setCreatingRoot(true)} data-testid="org-add-root" /></Tooltip>}
                <Tooltip title={t("刷新")}><Button size="small" icon={<ReloadOutlined />} onClick={load} /></Tooltip>
              </Space>}>
          <Input.Search allowClear placeholder={t("搜索名称或编码")} onChange={(e) => setQ(e.target.value)} style={{ marginBottom: 8 }}
                        data-testid="org-search" />
          <Space size={6} style={{ marginBottom: 8, fontSize: 12 }}>
            <Switch size="small" checked={dissolved} onChange={setDissolved} data-testid="org-show-dissolved" />
            {t("显示已撤销的组织")}
          </Space>
          {error && <Alert type="error" showIcon title={error} />}
          {!roots && !error && <Skeleton active />}
          {roots && shown.length === 0 && <Empty description={t("暂无数据")} />}
          {roots && (
            <div style={{ maxHeight: "70vh", overflow: "auto" }}>
              <Tree<Shown> blockNode showLine treeData={shown} selectedKeys={selected ? [selected.id] : []}
                    expandedKeys={searching ? unfolded : expanded}
                    onExpand={(keys) => setExpanded(keys.map(Number))}
                    onSelect={(keys) => keys.length && set({ unit: String(keys[0]), tab: undefined })} />
            </div>
          )}
        </Card>
      </Col>
      <Col xs={24} lg={16} xl={17} style={{ minWidth: 0 }}>
        {selected && !selected.limited ? (
          <Space orientation="vertical" size={12} style={{ width: "100%" }}>
            <UnitDetails unit={selected} index={index} access={access} onChanged={load}
                         onCreated={(id) => { set({ unit: String(id), tab: undefined }); load(); }} />
            <Card size="small">
              <Tabs activeKey={get("tab") ?? tabs[0]?.key} onChange={(k) => set({ tab: k })} items={tabs} destroyOnHidden
                    data-testid="unit-tabs" />
            </Card>
          </Space>
        ) : (
          roots && <Card><Empty description={t("请在左侧选择一个组织")} /></Card>
        )}
      </Col>
      {creatingRoot && (
        <UnitForm parent={null} siblings={roots ?? []} onClose={() => setCreatingRoot(false)}
                  onSaved={(id) => { setCreatingRoot(false); set({ unit: String(id), tab: undefined }); load(); }} />
      )}
    </Row>
  );
}
