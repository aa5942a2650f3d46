import { Tag, Timeline, Typography } from "antd";
import type { HistoryEntry } from "../api";
import { ACTIONS, EVENTS, useT } from "../i18n";
import { when } from "../format";

const COLOR: Record<string, string> = { approve: "green", reject: "red", return: "orange", withdraw: "gray", submit: "blue" };

function verb(action: string): string {
  const last = action.split(".").pop() ?? action;
  return EVENTS[action] ?? ACTIONS[last] ?? action;
}

/** Who did what, when, and why, oldest first: the 流转记录 an approver reads before deciding. */
export function History({ entries }: { entries: HistoryEntry[] }) {
  const t = useT();
  return (
    <Timeline
      data-testid="history"
      items={entries.map((e) => {
        const last = e.action.split(".").pop() ?? e.action;
        const auto = e.details && (e.details as Record<string, unknown>).auto;
        return {
          color: COLOR[last] ?? "blue",
          content: (
            <div>
              <Typography.Text strong>{e.node_name ?? ""}</Typography.Text>{" "}
              <Tag color={COLOR[last]}>{t(verb(e.action))}</Tag>
              {e.actor_name ?? (auto || !e.actor ? t("系统") : "")}
              {e.on_behalf_of_name ? `（${e.on_behalf_of_name}）` : ""}
              <div style={{ color: "#888", fontSize: 12 }}>{when(e.at)}</div>
              {e.comment && <div data-testid="history-comment">“{e.comment}”</div>}
            </div>
          ),
        };
      })}
    />
  );
}
