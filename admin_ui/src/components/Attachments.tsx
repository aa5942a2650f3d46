// An instance's attachments: the list (name, size, who added it, when, a download link) and, where
// the viewer may add one (the initiator, or whoever holds an open task of a running instance —
// the server decides again), an upload button. The same upload is used by the form's file field.
import { useCallback, useEffect, useRef, useState } from "react";
import { App, Button, Card, List, Space, Typography } from "antd";
import { ApiError, call, errorText, type S } from "../api";
import { useT } from "../i18n";
import { when } from "../format";

export type Attachment = S["AttachmentView"];

/** 512 B, 12 KB, 3.4 MB. */
export function fileSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.ceil(n / 1024)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export function downloadHref(id: number): string {
  return `/api/attachments/${id}`;
}

/** Whether a file matches an accept list as a browser reads it (".pdf,image/*,application/zip"). */
export function accepts(accept: string | undefined, file: { name: string; type: string }): boolean {
  const parts = (accept ?? "").split(",").map((p) => p.trim().toLowerCase()).filter(Boolean);
  if (!parts.length) return true;
  const name = file.name.toLowerCase();
  const type = (file.type || "").toLowerCase();
  return parts.some((p) => (p.startsWith(".") ? name.endsWith(p) : p.endsWith("/*") ? type.startsWith(p.slice(0, -1)) : type === p));
}

/** Upload one file to an instance (or, without one, to the uploader's staging area for a start
 * form); on a task page `taskId` names the task it is added at (a file added at a confidential
 * node's task is its uploader's alone). The server's Chinese message (size limit, type, who may
 * add) comes back as an ApiError. */
export function uploadFile(file: File, instanceId?: number | null, taskId?: number | null): Promise<Attachment> {
  const body = new FormData();
  body.append("file", file, file.name);
  if (instanceId && taskId) body.append("task_id", String(taskId));
  return call<Attachment>("POST", instanceId ? `/process-instances/${instanceId}/attachments` : "/attachments", { body });
}

/** Take back a file staged for a start form (not yet submitted with it). */
export function discardStaged(id: number): Promise<unknown> {
  return call("DELETE", `/attachments/${id}`);
}

/** The attachments of an instance, loaded and reloadable. */
export function useAttachments(instanceId?: number | string | null) {
  const [files, setFiles] = useState<Attachment[] | null>(null);
  const reload = useCallback(() => {
    if (!instanceId) return;
    call<Attachment[]>("GET", `/process-instances/${instanceId}/attachments`).then(setFiles).catch(() => setFiles([]));
  }, [instanceId]);
  useEffect(reload, [reload]);
  return { files, reload };
}

/** A hidden file input and a button that opens it; checks `accept` before sending. */
export function UploadButton({ instanceId, taskId, accept, disabled, onUploaded, label, testId = "attachment-upload" }: {
  instanceId?: number | null;
  taskId?: number | null;
  accept?: string;
  disabled?: boolean;
  onUploaded: (a: Attachment) => void;
  label?: string;
  testId?: string;
}) {
  const t = useT();
  const { message } = App.useApp();
  const input = useRef<HTMLInputElement | null>(null);
  const [busy, setBusy] = useState(false);
  const send = async (list: FileList | null) => {
    const picked = Array.from(list ?? []);
    if (input.current) input.current.value = "";
    for (const file of picked) {
      if (!accepts(accept, file)) {
        message.error(t("「{name}」不是允许的文件类型（{accept}）", { name: file.name, accept: accept ?? "" }));
        continue;
      }
      if (file.size === 0) {
        message.error(t("「{name}」是空文件", { name: file.name }));
        continue;
      }
      setBusy(true);
      try {
        const a = await uploadFile(file, instanceId, taskId);
        message.success(t("已上传「{name}」", { name: a.filename }));
        onUploaded(a);
      } catch (e) {
        const why = e instanceof ApiError && e.status === 413 && !e.detail ? t("文件太大") : errorText(e, t);
        message.error(t("「{name}」上传失败：{why}", { name: file.name, why }));
      } finally {
        setBusy(false);
      }
    }
  };
  return (
    <>
      <input ref={input} type="file" multiple accept={accept || undefined} style={{ display: "none" }}
             data-testid={`${testId}-input`} onChange={(e) => send(e.target.files)} />
      <Button size="small" loading={busy} disabled={disabled} data-testid={testId} onClick={() => input.current?.click()}>
        {label ?? t("上传附件")}
      </Button>
    </>
  );
}

/** The attachments card. Give `files` to show a list the page already loads; otherwise the
 * component loads the instance's list itself. With `canUpload`, an upload button. */
export function Attachments({ instanceId, taskId, files: given, canUpload = false, onChange }: {
  instanceId: number;
  taskId?: number | null;
  files?: Attachment[] | null;
  canUpload?: boolean;
  onChange?: () => void;
}) {
  const t = useT();
  const own = useAttachments(given === undefined ? instanceId : null);
  const files = given === undefined ? own.files : given;
  if (!canUpload && !files?.length) return null;
  return (
    <Card size="small" title={t("附件")} data-testid="attachments"
          extra={canUpload && <UploadButton instanceId={instanceId} taskId={taskId} onUploaded={() => { own.reload(); onChange?.(); }} />}>
      <List size="small" loading={files === null} dataSource={files ?? []} locale={{ emptyText: t("暂无附件") }}
        renderItem={(f) => (
          <List.Item data-testid="attachment-row">
            <Space wrap size={12}>
              <a href={downloadHref(f.id)} download={f.filename} data-testid="attachment-link">{f.filename}</a>
              <Typography.Text type="secondary">{fileSize(f.size)}</Typography.Text>
              <Typography.Text type="secondary">{f.uploaded_by_name}</Typography.Text>
              <Typography.Text type="secondary">{when(f.created_at)}</Typography.Text>
            </Space>
          </List.Item>
        )} />
    </Card>
  );
}
