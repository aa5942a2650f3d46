import { useState } from "react";
import { Alert, App, Button, Card, Form, Input } from "antd";
import { ApiError, api } from "../api";
import { useT } from "../i18n";

/** Change one's password; `forced` after the first sign-in with an initial password. The server's
 * password policy speaks for itself: its reasons come back as field problems. */
export function ChangePassword({ forced = false, onDone }: { forced?: boolean; onDone: () => void }) {
  const t = useT();
  const { message } = App.useApp();
  const [form] = Form.useForm();
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (v: { old_password: string; new_password: string }) => {
    setBusy(true);
    setError("");
    try {
      await api.post("/auth/password", { old_password: v.old_password, new_password: v.new_password });
      message.success(t("密码已修改"));
      onDone();
    } catch (e) {
      if (e instanceof ApiError) {
        const fields = e.errors.filter((p) => p.field.endsWith("new_password") || p.field.endsWith("old_password"));
        if (fields.length)
          form.setFields(fields.map((p) => ({ name: p.field.endsWith("old_password") ? "old_password" : "new_password", errors: [p.message] })));
        setError(e.detail || e.title);
      } else setError(t("网络错误，请稍后重试"));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div style={{ display: "flex", justifyContent: "center", padding: 16 }}>
      <Card title={t("修改密码")} style={{ width: "100%", maxWidth: 420 }}>
        {forced && <Alert type="info" showIcon title={t("首次登录须修改初始密码")} style={{ marginBottom: 16 }} />}
        {error && <Alert data-testid="password-error" type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
        <Form form={form} layout="vertical" onFinish={submit} requiredMark={false}>
          <Form.Item name="old_password" label={t("原密码")} rules={[{ required: true }]}>
            <Input.Password autoComplete="current-password" />
          </Form.Item>
          <Form.Item name="new_password" label={t("新密码")} rules={[{ required: true }]}>
            <Input.Password autoComplete="new-password" />
          </Form.Item>
          <Form.Item
            name="confirm"
            label={t("确认新密码")}
            dependencies={["new_password"]}
            rules={[
              { required: true },
              ({ getFieldValue }) => ({
                validator: (_, v) =>
                  !v || v === getFieldValue("new_password") ? Promise.resolve() : Promise.reject(new Error(t("两次输入的新密码不一致"))),
              }),
            ]}
          >
            <Input.Password autoComplete="new-password" />
          </Form.Item>
          <Button type="primary" htmlType="submit" block loading={busy}>
            {t("确定")}
          </Button>
        </Form>
      </Card>
    </div>
  );
}
