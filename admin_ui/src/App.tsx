import { Suspense, lazy, useCallback, useContext, useEffect, useState } from "react";
import { Link, Navigate, Route, Routes, useLocation, useNavigate } from "react-router-dom";
import { Button, Dropdown, Grid, Menu, Result, Skeleton, Spin } from "antd";
import { DownOutlined, GlobalOutlined, UserOutlined } from "@ant-design/icons";
import { api, clearDrafts, hasSession, whenSignedOut, type Me } from "./api";
import { LangContext, useT } from "./i18n";
import { Login } from "./pages/Login";
import { ChangePassword } from "./pages/ChangePassword";
import { Inbox } from "./pages/Inbox";
import { orgAccess } from "./org/access";

// The inbox loads with the shell; the pages that need the form renderer or bpmn-js load on demand,
// so a phone's first visit fetches a third of the scripts.
const TaskPage = lazy(() => import("./pages/TaskPage").then((m) => ({ default: m.TaskPage })));
const StartCatalogue = lazy(() => import("./pages/Start").then((m) => ({ default: m.StartCatalogue })));
const StartForm = lazy(() => import("./pages/Start").then((m) => ({ default: m.StartForm })));
const InstancePage = lazy(() => import("./pages/InstancePage").then((m) => ({ default: m.InstancePage })));
const FormList = lazy(() => import("./pages/FormDesigner").then((m) => ({ default: m.FormList })));
const FormDesigner = lazy(() => import("./pages/FormDesigner").then((m) => ({ default: m.FormDesigner })));
const ProcessList = lazy(() => import("./pages/ProcessDesigner").then((m) => ({ default: m.ProcessList })));
const ProcessDesigner = lazy(() => import("./pages/ProcessDesigner").then((m) => ({ default: m.ProcessDesigner })));
const MonitorList = lazy(() => import("./pages/Monitor").then((m) => ({ default: m.MonitorList })));
const MonitorInstance = lazy(() => import("./pages/Monitor").then((m) => ({ default: m.MonitorInstance })));
const AuditPage = lazy(() => import("./pages/AuditPage").then((m) => ({ default: m.AuditPage })));
const OrgAdmin = lazy(() => import("./pages/OrgAdmin").then((m) => ({ default: m.OrgAdmin })));

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const load = useCallback(() => {
    if (!hasSession()) return setMe(null);
    // Any failure (an ended session, the server down) shows the sign-in page.
    api.get<Me>("/me").then(setMe).catch(() => setMe(null));
  }, []);
  useEffect(() => {
    whenSignedOut(() => setMe(null));
    load();
  }, [load]);

  if (me === undefined) return <Spin fullscreen />;
  if (me === null) return <Login onSignedIn={load} />;
  if (me.must_change_password) return <ChangePassword forced onDone={load} />;
  return <Shell me={me} onSignedOut={() => setMe(null)} reload={load} />;
}

function LangSwitch() {
  const { lang, setLang } = useContext(LangContext);
  return (
    <Button
      size="small"
      icon={<GlobalOutlined />}
      data-testid="lang-switch"
      onClick={() => setLang(lang === "en" ? "zh-CN" : "en")}
    >
      {lang === "en" ? "中文" : "English"}
    </Button>
  );
}
export { LangSwitch };

function Shell({ me, onSignedOut, reload }: { me: Me; onSignedOut: () => void; reload: () => void }) {
  const t = useT();
  const loc = useLocation();
  const nav = useNavigate();
  const screens = Grid.useBreakpoint();
  const phone = !screens.md;
  const orgPage = orgAccess(me.permissions).page;
  const items = [
    { key: "/inbox", label: <Link to="/inbox">{t("待办")}</Link> },
    ...(me.permissions.includes("process.start") ? [{ key: "/start", label: <Link to="/start">{t("发起申请")}</Link> }] : []),
    ...(me.permissions.includes("process.design") ? [{ key: "/designer/processes", label: <Link to="/designer/processes">{t("流程设计")}</Link> }] : []),
    ...(me.permissions.includes("process.design") ? [{ key: "/designer/forms", label: <Link to="/designer/forms">{t("表单设计")}</Link> }] : []),
    ...(me.permissions.includes("instance.read") ? [{ key: "/monitor", label: <Link to="/monitor">{t("流程监控")}</Link> }] : []),
    ...(me.permissions.includes("audit.read") ? [{ key: "/audit", label: <Link to="/audit">{t("审计")}</Link> }] : []),
    ...(orgPage ? [{ key: "/org", label: <Link to="/org">{t("组织管理")}</Link> }] : []),
  ];
  const selected = items.find((i) => loc.pathname.startsWith(i.key))?.key ?? "/inbox";
  const signOut = async () => {
    try {
      clearDrafts();
      await api.post("/auth/logout");
    } finally {
      onSignedOut();
      nav("/");
    }
  };
  // The first page: the inbox for those who act on tasks; else the administrator's own page (the
  // auditor's log; 组织管理 for the system and security administrators, who have no inbox).
  const home = me.permissions.includes("task.act") || me.permissions.includes("process.start") ? "/inbox"
    : me.permissions.includes("audit.read") ? "/audit" : orgPage ? "/org" : "/inbox";
  return (
    <div>
      <header className="dj-header">
        <span className="dj-brand">{phone ? "djflow" : t("djflow 审批")}</span>
        <Menu mode="horizontal" selectedKeys={[selected]} items={items} style={{ flex: 1, minWidth: 0, borderBottom: 0 }} />
        <LangSwitch />
        <Dropdown
          menu={{
            items: [
              { key: "password", label: t("修改密码"), onClick: () => nav("/password") },
              { key: "logout", label: t("退出登录"), onClick: signOut },
            ],
          }}
        >
          <Button size="small" type="text" data-testid="user-menu" icon={<UserOutlined />}>
            {phone ? null : me.display_name} <DownOutlined />
          </Button>
        </Dropdown>
      </header>
      <main className="dj-content">
        <Suspense fallback={<Skeleton active />}>
        <Routes>
          <Route path="/" element={<Navigate to={home} replace />} />
          <Route path="/login" element={<Navigate to={home} replace />} />
          <Route path="/inbox" element={<Inbox me={me} />} />
          <Route path="/tasks/:id" element={<TaskPage />} />
          <Route path="/start" element={<StartCatalogue />} />
          <Route path="/start/:key" element={<StartForm username={me.username} />} />
          <Route path="/instances/:id" element={<InstancePage me={me} />} />
          <Route path="/audit" element={<AuditPage />} />
          <Route path="/monitor" element={<MonitorList />} />
          <Route path="/monitor/:id" element={<MonitorInstance me={me} />} />
          <Route path="/designer/processes" element={<ProcessList />} />
          <Route path="/designer/processes/:key" element={<ProcessDesigner />} />
          <Route path="/designer/forms" element={<FormList />} />
          <Route path="/designer/forms/:key" element={<FormDesigner />} />
          <Route path="/org" element={<OrgAdmin me={me} />} />
          <Route path="/password" element={<ChangePassword onDone={() => { reload(); nav(home); }} />} />
          <Route path="*" element={<Result status="404" title="404" extra={<Link to={home}>{t("返回")}</Link>} />} />
        </Routes>
        </Suspense>
      </main>
    </div>
  );
}
