import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { Session } from "./auth";
import { errorOf } from "./auth";
import { Link, ErrorBox, useAction } from "./ui";

export function SignIn({ session, notice }: { session: Session; notice?: string }): JSX.Element {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, error, run] = useAction();
  return (
    <main class="auth">
      <h1>Sign in to Tenantry</h1>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(() => session.signIn(email, password));
        }}
      >
        <label>
          E-mail
          <input type="email" name="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input type="password" name="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <ErrorBox error={error} />
      <p>
        New here? <Link href="/signup">Create an account</Link>
      </p>
    </main>
  );
}

export function SignUp({ session }: { session: Session }): JSX.Element {
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, error, run] = useAction();
  return (
    <main class="auth">
      <h1>Create your Tenantry account</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const res = await fetch(`${session.base}/v1/auth/signup`, {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ email, password, name }),
              credentials: "omit",
            });
            if (!res.ok) throw await errorOf(res);
            await session.signIn(email, password);
          });
        }}
      >
        <label>
          Name
          <input name="name" autoComplete="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          E-mail
          <input type="email" name="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password (at least 12 characters)
          <input type="password" name="password" autoComplete="new-password" required minLength={12} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </button>
      </form>
      <ErrorBox error={error} />
      <p>
        Already have an account? <Link href="/login">Sign in</Link>
      </p>
    </main>
  );
}
