// English for the tasks pages (the Chinese text is the key); merged into i18n.tsx's dictionary.
export const en: Record<string, string> = {
  // attachments (components/Attachments.tsx, the task, instance and monitor pages)
  "暂无附件": "No attachments",
  "发起前上传附件": "Uploaded a file for a request",
  "删除未提交的附件": "Deleted an unsubmitted file",
  "「{name}」不是允许的文件类型（{accept}）": "“{name}” is not an allowed file type ({accept})",
  "「{name}」是空文件": "“{name}” is an empty file",
  "已上传「{name}」": "Uploaded “{name}”",
  "文件太大": "The file is too large",
  "「{name}」上传失败：{why}": "Could not upload “{name}”: {why}",
  // the file field of forms (components/FormView.tsx)
  "移除": "Remove",
  "附件 #{id}": "Attachment #{id}",
  "无附件": "No files",
  "预览中不上传文件": "Files are not uploaded in the preview",
  "最多 {n} 个文件": "At most {n} files",
  "类型：{accept}": "Types: {accept}",
  // form designer (pages/FormDesigner.tsx)
  "附件上传": "File upload",
  "最多文件数": "Maximum files",
  "允许的类型": "Allowed types",
  "如 .pdf,.docx,image/*；留空则为系统允许的全部类型": "e.g. .pdf,.docx,image/*; empty allows every type the system accepts",
  // inbox filters (pages/Inbox.tsx)
  "到达时间": "Arrived",
};
