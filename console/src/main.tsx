/**
 * The on-call console (docs/console.md): a client of the admin API and nothing else. Signed in
 * by an HttpOnly session cookie; pages are hash routes so /console serves one file.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { type Session, call, setUnauthorizedHandler } from "./api.ts";
import { DeadLetterDetail, DeadLetters } from "./deadletters.tsx";
import { Pipeline } from "./pipeline.tsx";
import { ProjectDetail, Projects } from "./projects.tsx";
import { RedriveTask, Redrives } from "./redrive.tsx";
import { ErrorBox, PageHeading, href, useRoute } from "./ui.tsx";
// oxlint-disable-next-line import/no-unassigned-import -- Vite bundles the stylesheet this way
import "./styles.css";

function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const session = await call("createSession", { body: { token } });
      setToken("");
      onSignedIn(session);
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <PageHeading>Shipyard on-call console</PageHeading>
      <form
        aria-label="Sign in"
        onSubmit={(event) => {
          event.preventDefault();
          void submit();
        }}
      >
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <ErrorBox error={error} />
        <p class="muted">The token is exchanged for a session cookie this page cannot read; it is not stored.</p>
      </form>
    </main>
  );
}

const PAGES = [
  { key: "dlq", label: "Dead letters" },
  { key: "redrive", label: "Redrive" },
  { key: "projects", label: "Projects" },
  { key: "pipeline", label: "Pipeline" },
] as const;

function Page({ route }: { route: string[] }) {
  const [page, id] = route;
  switch (page) {
    case "redrive":
      return id ? <RedriveTask key={id} id={id} /> : <Redrives />;
    case "projects":
      return id ? <ProjectDetail key={id} id={id} /> : <Projects />;
    case "pipeline":
      return <Pipeline />;
    default:
      return id ? <DeadLetterDetail key={id} id={id} /> : <DeadLetters />;
  }
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const route = useRoute();
  useEffect(() => {
    setUnauthorizedHandler(() => setSession(null));
    call("getSession").then(setSession, () => setSession(null));
  }, []);
  if (session === undefined) return <p class="muted">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  const current = route[0] ?? "dlq";
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(event) => (event.preventDefault(), document.getElementById("main")?.focus())}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Shipyard</span>
        <nav aria-label="Console">
          <ul>
            {PAGES.map((page) => (
              <li key={page.key}>
                <a href={href(page.key)} aria-current={current === page.key ? "page" : undefined}>
                  {page.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button
          type="button"
          class="secondary"
          onClick={() => void call("deleteSession").then(() => setSession(null), setError)}
        >
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorBox error={error} />
        <Page key={route.join("/")} route={route} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
