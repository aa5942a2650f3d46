// What the org admin tabs share: the server's refusals in Chinese, a form's submit that puts field
// problems on their fields, and the id of a person picked by username.
import { useCallback } from "react";
import { App, type FormInstance } from "antd";
import type { Dayjs } from "dayjs";
import { ApiError, api, errorText, type Page, type S } from "../../api";
import { useT } from "../../i18n";
import { placeProblems } from "../../org/forms";

export type Person = S["PersonView"];
export type OrgNode = S["OrgNode"];
export type T = ReturnType<typeof useT>;

export const PARTY_STATUS: Record<string, string> = {
  applicant: "申请人", activist: "入党积极分子", candidate: "发展对象", probationary: "预备党员", full: "正式党员",
  none: "非党员",
};
export const DATA_SCOPES: Record<string, string> = {
  self: "仅本人", org: "本组织", org_and_descendants: "本组织及下级", all: "全部",
};

/** The server's reason, with the field problems it gave (a 422 names each). */
export function problemText(e: unknown, t: T): string {
  const head = errorText(e, t);
  const more = e instanceof ApiError ? e.errors.map((p) => p.message).filter((m) => m && m !== head) : [];
  return more.length ? `${head}：${more.join("；")}` : head;
}

export const day = (d: Dayjs | null | undefined) => (d ? d.format("YYYY-MM-DD") : null);

/** Run `call` for a form: on success say so and return its result; on a refusal put each field
 * problem on its field (`alias` renames the server's names) and show the rest as a message. */
export function useSubmit() {
  const t = useT();
  const { message } = App.useApp();
  return useCallback(async <R,>(form: FormInstance | null, call: () => Promise<R>, done = "操作成功",
                                alias: Record<string, string> = {}): Promise<R | undefined> => {
    try {
      const result = await call();
      message.success(t(done));
      return result;
    } catch (e) {
      if (form && e instanceof ApiError && e.errors.length) {
        const names = form.getFieldsError().map((f) => String(f.name.join(".")));
        const { placed, rest } = placeProblems(e.errors, names, alias);
        form.setFields(placed);
        message.error(rest.length || !placed.length ? problemText(e, t) : errorText(e, t));
      } else message.error(problemText(e, t));
      return undefined;
    }
  }, [message, t]);
}

/** The id of the person with `username`, among those the caller's user.read scope reaches: the
 * shared PersonPicker (everyone who can sign in) gives usernames, a delegation takes the delegate's id. */
export function usePersonId() {
  const t = useT();
  return useCallback(async (username: string): Promise<number> => {
    const found = await api.get<Page<Person>>("/users", { q: username, size: 50 });
    const person = found.items.find((p) => p.username === username);
    if (!person) throw new Error(t("{name} 不在您的管理范围内", { name: username }));
    return person.id;
  }, [t]);
}
