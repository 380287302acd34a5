/** Small shared pieces of the console: data loading, polling, errors, times, the hash router. */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api.ts";

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now and whenever `deps` change or `reload` is called; keeps the last good data. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((previous) => ({ ...previous, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: unknown) => live && setState((previous) => ({ data: previous.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
    // oxlint-disable-next-line react-hooks/exhaustive-deps -- the caller names what load depends on
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

/** Calls `reload` every `ms` while `active` and the page is visible. */
export function usePoll(reload: () => void, ms: number, active = true): void {
  const saved = useRef(reload);
  saved.current = reload;
  useEffect(() => {
    const timer = active
      ? setInterval(() => {
          if (document.visibilityState === "visible") saved.current();
        }, ms)
      : undefined;
    return () => clearInterval(timer);
  }, [ms, active]);
}

/** The value of the input, select or textarea an event came from. */
export function inputValue(event: Event): string {
  const target = event.currentTarget;
  return target instanceof HTMLInputElement ||
    target instanceof HTMLSelectElement ||
    target instanceof HTMLTextAreaElement
    ? target.value
    : "";
}

/** An error as a sentence: the API's code and message. */
export function describe(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.status} ${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {describe(error)}
    </p>
  );
}

/** A live region for the outcome of an action (screen readers hear it). */
export function Notice({ children }: { children: ComponentChildren }) {
  return (
    <p class="notice" role="status">
      {children}
    </p>
  );
}

export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

export function Time({ ms }: { ms: number | null | undefined }) {
  if (ms === null || ms === undefined) return <span>—</span>;
  return <time dateTime={new Date(ms).toISOString()}>{time(ms)}</time>;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(2)} h`;
}

/** `<input type="datetime-local">` value (local time) → ISO 8601 for the API, or undefined. */
export function localToIso(value: string): string | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

function readRoute(): string[] {
  return location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .filter((part) => part.length > 0)
    .map((part) => decodeURIComponent(part));
}

/** The current hash route, e.g. `#/dlq/abc` → ["dlq", "abc"]. */
export function useRoute(): string[] {
  const [route, setRoute] = useState(readRoute);
  useEffect(() => {
    const update = () => setRoute(readRoute());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

export function href(...parts: string[]): string {
  return `#/${parts.map((part) => encodeURIComponent(part)).join("/")}`;
}

/** Cursor paging over an API list: the cursor of the page shown, and the way back and on. */
export interface Pages {
  cursor: string | undefined;
  back: (() => void) | null;
  reset: () => void;
  on: (next: string | null | undefined) => (() => void) | null;
}

export function usePages(): Pages {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  return {
    cursor: cursors[cursors.length - 1],
    back: cursors.length > 1 ? () => setCursors(cursors.slice(0, -1)) : null,
    reset: () => setCursors([undefined]),
    on: (next) => (next ? () => setCursors([...cursors, next]) : null),
  };
}

/** Previous / next page buttons for `usePages`, plus whatever else belongs in the bar. */
export function Pager({
  pages,
  next,
  label,
  children,
}: {
  pages: Pages;
  next: string | null | undefined;
  label: string;
  children?: ComponentChildren;
}) {
  const back = pages.back;
  const on = pages.on(next);
  return (
    <nav class="row" aria-label={label}>
      <button type="button" class="secondary" disabled={!back} onClick={() => back?.()}>
        Previous page
      </button>
      <button type="button" class="secondary" disabled={!on} onClick={() => on?.()}>
        Next page
      </button>
      {children}
    </nav>
  );
}

/** Moves focus to the page's heading when the page changes (keyboard and screen-reader users). */
export function PageHeading({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}
