import { useState } from "react";
import { Alert, Button, Card, Form, Input } from "antd";
import { LockOutlined, UserOutlined } from "@ant-design/icons";
import { ApiError, api } from "../api";
import { useT } from "../i18n";
import { LangSwitch } from "../App";

/** Sign-in. A wrong password, a locked account (423) and a refused address (429) each get the
 * server's own words, which say how long to wait. */
export function Login({ onSignedIn }: { onSignedIn: () => void }) {
  const t = useT();
  const [error, setError] = useState<{ kind: "error" | "warning"; title: string; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (v: { username: string; password: string }) => {
    setBusy(true);
    setError(null);
    try {
      await api.post("/auth/login", v);
      onSignedIn();
    } catch (e) {
      if (e instanceof ApiError && e.status === 423) setError({ kind: "warning", title: t("账号已锁定"), text: e.detail });
      else if (e instanceof ApiError && e.status === 429) setError({ kind: "warning", title: t("尝试过多"), text: e.detail });
      else if (e instanceof ApiError && e.status > 0) setError({ kind: "error", title: e.detail || e.title, text: "" });
      else setError({ kind: "error", title: t("网络错误，请稍后重试"), text: "" });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div style={{ minHeight: "100vh", display: "flex", alignItems: "center", justifyContent: "center", padding: 16 }}>
      <Card title={t("djflow 审批")} extra={<LangSwitch />} style={{ width: "100%", maxWidth: 380 }}>
        {error && (
          <Alert data-testid="login-error" type={error.kind} showIcon title={error.title} description={error.text || undefined}
                 style={{ marginBottom: 16 }} />
        )}
        <Form layout="vertical" onFinish={submit} requiredMark={false}>
          <Form.Item name="username" label={t("用户名")} rules={[{ required: true, message: t("请输入用户名") }]}>
            <Input prefix={<UserOutlined />} autoComplete="username" autoFocus />
          </Form.Item>
          <Form.Item name="password" label={t("密码")} rules={[{ required: true, message: t("请输入密码") }]}>
            <Input.Password prefix={<LockOutlined />} autoComplete="current-password" />
          </Form.Item>
          <Button type="primary" htmlType="submit" block loading={busy}>
            {t("登录")}
          </Button>
        </Form>
      </Card>
    </div>
  );
}
