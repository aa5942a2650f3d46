import { StrictMode, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router-dom";
import { App as AntApp, ConfigProvider } from "antd";
import zhCN from "antd/locale/zh_CN";
import enUS from "antd/locale/en_US";
import dayjs from "dayjs";
import "dayjs/locale/zh-cn";
import { App } from "./App";
import { LangContext, initialLang, type Lang } from "./i18n";
import "./styles.css";

function Root() {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const ctx = useMemo(
    () => ({
      lang,
      setLang: (l: Lang) => {
        localStorage.setItem("djflow.lang", l);
        document.documentElement.lang = l;
        dayjs.locale(l === "en" ? "en" : "zh-cn");
        setLangState(l);
      },
    }),
    [lang],
  );
  document.documentElement.lang = lang;
  dayjs.locale(lang === "en" ? "en" : "zh-cn");
  return (
    <LangContext.Provider value={ctx}>
      <ConfigProvider locale={lang === "en" ? enUS : zhCN} button={{ autoInsertSpace: false }}
                      theme={{ token: { colorPrimary: "#c0392b" } }}>
        <AntApp>
          <BrowserRouter>
            <App />
          </BrowserRouter>
        </AntApp>
      </ConfigProvider>
    </LangContext.Provider>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <Root />
  </StrictMode>,
);
