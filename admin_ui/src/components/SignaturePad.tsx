import { useEffect, useRef } from "react";
import { Button, Space } from "antd";
import SignaturePadLib from "signature_pad";
import { useT } from "../i18n";

/** A drawn signature (finger or mouse), handed up as data:image/png;base64,… or "" when cleared. */
export function SignaturePad({ onChange }: { onChange: (png: string) => void }) {
  const t = useT();
  const canvas = useRef<HTMLCanvasElement>(null);
  const pad = useRef<SignaturePadLib | null>(null);
  useEffect(() => {
    const el = canvas.current!;
    const ratio = Math.max(window.devicePixelRatio || 1, 1);
    el.width = el.offsetWidth * ratio;
    el.height = el.offsetHeight * ratio;
    el.getContext("2d")!.scale(ratio, ratio);
    const p = new SignaturePadLib(el, { penColor: "#000" });
    p.addEventListener("endStroke", () => onChange(p.isEmpty() ? "" : p.toDataURL("image/png")));
    pad.current = p;
    return () => p.off();
  }, [onChange]);
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <canvas ref={canvas} className="dj-signature" data-testid="signature" />
      <Button size="small" onClick={() => { pad.current?.clear(); onChange(""); }}>{t("清除")}</Button>
    </Space>
  );
}
