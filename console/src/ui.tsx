import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { describe } from "./errors";
import { navigate } from "./router";

/** An API error in the customer's words, with the API's detail and the request id. */
export function ErrorBox({ error }: { error: unknown }): JSX.Element | null {
  if (!error) return null;
  const d = describe(error);
  return (
    <div class="error" role="alert">
      <strong>{d.words}</strong>
      {d.detail ? <div class="detail">{d.detail}</div> : null}
      {d.requestId ? (
        <div class="rid">
          Request id: <code>{d.requestId}</code> (quote it when you contact support)
        </div>
      ) : null}
    </div>
  );
}

export function Link(props: { href: string; children: ComponentChildren; class?: string }): JSX.Element {
  return (
    <a
      href={props.href}
      class={props.class}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Load with `fn` whenever `deps` change, and every `pollMs` when given. */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[], pollMs?: number): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let live = true;
    setLoading(true);
    fn().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (!live) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  useEffect(() => {
    if (!pollMs) return;
    const id = setInterval(reload, pollMs);
    return () => clearInterval(id);
  }, [pollMs, reload]);
  return { data, error, loading, reload };
}

/** Run an action, keeping its error for display. */
export function useAction(): [boolean, unknown, (fn: () => Promise<void>) => Promise<void>, () => void] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (fn: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return [busy, error, run, () => setError(null)];
}

/** A destructive action confirmed by typing the object's name: "Delete" unless `verb`
 * names another, with `consequence` saying what it destroys. */
export function ConfirmByName(props: {
  name: string;
  what: string;
  onConfirm: () => void;
  onCancel: () => void;
  busy?: boolean;
  verb?: string;
  consequence?: string;
}): JSX.Element {
  const verb = props.verb ?? "Delete";
  const [typed, setTyped] = useState("");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="confirm-title">
      <h3 id="confirm-title">
        {verb} {props.what} “{props.name}”?
      </h3>
      <p>{props.consequence ?? "This cannot be undone."} Type the name to confirm.</p>
      <label>
        Name
        <input ref={input} value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
      </label>
      <div class="row">
        <button class="danger" disabled={typed !== props.name || props.busy} onClick={props.onConfirm}>
          {verb} {props.what}
        </button>
        <button onClick={props.onCancel}>Cancel</button>
      </div>
    </div>
  );
}

/** A column heading: its text, or `{ hidden }` for one only screen readers announce. */
export type Column = string | { hidden: string };

/** A table with one header row of column headings (scope="col") and `children` rows. */
export function Table(props: { columns: Column[]; caption?: string; children: ComponentChildren }): JSX.Element {
  return (
    <table>
      {props.caption ? <caption>{props.caption}</caption> : null}
      <thead>
        <tr>
          {props.columns.map((c) =>
            typeof c === "string" ? (
              <th scope="col" key={c}>
                {c}
              </th>
            ) : (
              <th scope="col" key={c.hidden}>
                <span class="sr-only">{c.hidden}</span>
              </th>
            ),
          )}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}

/** A labelled text input bound to a string state (an e-mail input keeps its own markup:
 * Preact's types tie `type` to the other attributes). */
export function Field(props: {
  label: string;
  value: string;
  onValue: (v: string) => void;
  required?: boolean;
  pattern?: string;
  maxLength?: number;
  placeholder?: string;
}): JSX.Element {
  return (
    <label>
      {props.label}
      <input
        value={props.value}
        required={props.required}
        pattern={props.pattern}
        maxLength={props.maxLength}
        placeholder={props.placeholder}
        onInput={(e) => props.onValue(e.currentTarget.value)}
      />
    </label>
  );
}

/** A one-row form: its fields, then the submit button; `onSubmit` without the page load. */
export function RowForm(props: {
  submit: string;
  busy: boolean;
  onSubmit: () => void;
  primary?: boolean;
  label?: string;
  children: ComponentChildren;
}): JSX.Element {
  return (
    <form
      class="row"
      aria-label={props.label}
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit();
      }}
    >
      {props.children}
      <button type="submit" class={props.primary ? "primary" : undefined} disabled={props.busy}>
        {props.submit}
      </button>
    </form>
  );
}

/** A button that runs `action` through a component's `useAction` runner (its error is
 * shown by that component's ErrorBox), disabled while any of its actions runs. */
export function ActionButton(props: {
  run: (fn: () => Promise<void>) => Promise<void>;
  busy: boolean;
  action: () => Promise<void>;
  children: ComponentChildren;
  class?: string;
}): JSX.Element {
  return (
    <button class={props.class} disabled={props.busy} onClick={() => void props.run(props.action)}>
      {props.children}
    </button>
  );
}

/** Something shown once (a secret, a link), until the user says they are done. */
export function ShownOnce(props: { done: string; onDone: () => void; children: ComponentChildren }): JSX.Element {
  return (
    <div class="secret" role="status">
      {props.children}
      <button onClick={props.onDone}>{props.done}</button>
    </div>
  );
}
