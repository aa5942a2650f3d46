import { useCallback, useEffect, useState } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { Button, Card, Descriptions, Result, Skeleton, Space, Tag } from "antd";
import { ApiError, api, type InstanceView, type Me } from "../api";
import { STATUS, useT } from "../i18n";
import { Trail, useTrail } from "../components/Trail";
import { Attachments } from "../components/Attachments";
import { useInstanceAction } from "../hooks";
import { when } from "../format";

const COLOR: Record<string, string> = { running: "processing", completed: "success", rejected: "error", error: "error" };

/** An instance as its initiator or an approver sees it: status, who holds it now, history, diagram. */
export function InstancePage({ me }: { me: Me }) {
  const t = useT();
  const { id } = useParams();
  const nav = useNavigate();
  const [inst, setInst] = useState<InstanceView | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const trail = useTrail(id);
  const load = useCallback(() => {
    api.get<InstanceView>(`/process-instances/${id}`).then(setInst).catch((e) => setError(e));
  }, [id]);
  useEffect(load, [load]);
  const act = useInstanceAction(id, () => {
    load();
    trail.reload();
  });
  if (error) return <Result status="404" title={error.detail || error.title} extra={<Button onClick={() => nav("/inbox")}>{t("返回")}</Button>} />;
  if (!inst) return <Skeleton active />;
  const open = (inst.tasks ?? []).filter((x) => x.status === "open" && x.kind !== "cc");
  const mineOpen = open.find((x) => x.assignee === me.username);
  return (
    <Space orientation="vertical" size={12} style={{ width: "100%" }}>
      <Card title={inst.title} extra={<Tag data-testid="instance-status" color={COLOR[inst.status]}>{t(STATUS[inst.status] ?? inst.status)}</Tag>}>
        <Descriptions size="small" column={{ xs: 1, sm: 2, md: 3 }}>
          <Descriptions.Item label={t("发起人")}>{inst.initiator_name}</Descriptions.Item>
          <Descriptions.Item label={t("发起时间")}>{when(inst.started_at)}</Descriptions.Item>
          {open.length > 0 && (
            <Descriptions.Item label={t("当前处理人")}>
              {open.map((x) => `${x.assignee_name ?? x.assignee}（${x.node_name}）`).join("、")}
            </Descriptions.Item>
          )}
        </Descriptions>
        <Space wrap>
          {mineOpen && <Button type="primary" onClick={() => nav(`/tasks/${mineOpen.id}`)} data-testid="open-my-task">{t("办理")}</Button>}
          {inst.status === "running" && inst.initiator === me.username && (
            <Button onClick={() => act("withdraw")} data-testid="instance-withdraw">{t("撤回")}</Button>
          )}
        </Space>
      </Card>
      <Attachments instanceId={inst.id} onChange={trail.reload}
                   canUpload={inst.status === "running" && (inst.initiator === me.username || !!mineOpen)} />
      <Trail history={trail.history} diagram={trail.diagram} />
    </Space>
  );
}
