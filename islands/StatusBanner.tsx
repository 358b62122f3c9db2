/**
 * The session status banner, in the layout of every signed-in page. Hidden while all is well;
 * otherwise it says what happened and what to do: refreshing (only when slow), idle timeout
 * near ("Stay signed in"), connection lost (countdown, "Retry now"), signed out with the reason
 * ("Sign in again" returns to this page), or something went wrong ("Try again", "Sign out").
 * The work is done by {@link SessionKeeper}; this file only renders its view.
 *
 * Screen readers: the visible banner is not a live region (its countdowns tick every second);
 * two visually hidden live regions carry a sentence that changes only with the state (and,
 * for the idle warning, with the minute), so each change is announced once.
 *
 * On the sign-in page after a sign-out it renders nothing and tells the other tabs
 * (`mode: "announce_signed_out"`), so a sign-out by a plain form post reaches them too.
 *
 * @example
 * ```tsx
 * <Island name="StatusBanner" component={StatusBanner}
 *   props={{ mode: "live", refreshBuffer: 120, idleWarning: 300, workspace: "acme", userId }} />
 * ```
 * @module
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { announceSignedOut, type BannerView, SessionKeeper } from "./session_keeper.ts";

/** Props: settings from the server's configuration (seconds). */
export interface StatusBannerProps {
  mode: "live" | "announce_signed_out";
  refreshBuffer: number;
  idleWarning: number;
  workspace: string | null;
  /** The page's user (opaque id); the banner refuses tokens for anyone else. */
  userId: string | null;
}

/** What each sign-out reason means to the person. */
export const SIGNED_OUT_TEXT: Record<string, string> = {
  logout: "You signed out in another tab.",
  switched_account: "You signed in as another account in another tab.",
  revoked: "You were signed out from another device.",
  signed_out_everywhere: "You were signed out of all devices.",
  password_changed: "Your password was changed, so you were signed out here.",
  expired: "Your session expired.",
  idle_timeout: "You were signed out after a period of inactivity.",
  removed_from_workspace: "You were removed from this workspace.",
};

function seconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}

/** The sentence for screen readers: changes with the state, not with each second. */
export function announcement(view: BannerView, now: number): string {
  switch (view.kind) {
    case "hidden":
      return "";
    case "refreshing":
      return "Refreshing your session…";
    case "idle": {
      const minutes = Math.ceil(Math.max(0, view.deadline - now) / 60_000);
      return minutes <= 1
        ? "You'll be signed out within a minute for inactivity."
        : `You'll be signed out in ${minutes} minutes for inactivity.`;
    }
    case "ending": {
      const minutes = Math.ceil(Math.max(0, view.deadline - now) / 60_000);
      return minutes <= 1
        ? "Your session ends within a minute. Then sign in again to continue."
        : `Your session ends in ${minutes} minutes. Then sign in again to continue.`;
    }
    case "reconnecting":
      return "Connection lost. Reconnecting automatically.";
    case "signed_out":
      return view.signedInAgain
        ? "You're signed in again in another tab. Reload this page to continue."
        : `You're signed out. ${SIGNED_OUT_TEXT[view.reason] ?? "Your session has ended."}`;
    case "error":
      return "Something went wrong while checking your session.";
  }
}

function inWords(ms: number): string {
  const s = seconds(ms);
  if (s < 90) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.round(s / 60);
  return `${m} minute${m === 1 ? "" : "s"}`;
}

export default function StatusBanner(props: StatusBannerProps) {
  const [view, setView] = useState<BannerView>({ kind: "hidden" });
  // Only forces a re-render each second; the time itself is read below, at render.
  const [, setTick] = useState(0);
  const keeper = useRef<SessionKeeper | null>(null);

  useEffect(() => {
    if (props.mode === "announce_signed_out") {
      announceSignedOut("logout");
      return;
    }
    const k = new SessionKeeper(props, setView);
    keeper.current = k;
    k.start();
    document.documentElement.dataset.sessionKeeper = "started";
    return () => k.dispose();
  }, []);

  // Focus inside the banner (on "Stay signed in" or "Retry now") must not fall to <body> when
  // the banner hides: it moves to the page's main content, where reading continues.
  const region = useRef<HTMLDivElement>(null);
  const focusInside = useRef(false);
  useEffect(() => {
    const onFocusIn = (e: FocusEvent) => {
      focusInside.current = !!region.current?.contains(e.target as Node);
    };
    document.addEventListener("focusin", onFocusIn);
    return () => document.removeEventListener("focusin", onFocusIn);
  }, []);
  useEffect(() => {
    if (!focusInside.current) return;
    const active = document.activeElement;
    if (active && active !== document.body && region.current?.contains(active)) return;
    if (active && active !== document.body) return; // focus already went somewhere useful
    focusInside.current = false;
    document.getElementById("main")?.focus();
  }, [view]);

  // A countdown needs a clock; everything else does not.
  const ticking = view.kind === "idle" || view.kind === "ending" || view.kind === "reconnecting";
  useEffect(() => {
    if (!ticking) return;
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [ticking, view]);
  // Read at render: a countdown that just appeared starts from the real time left.
  const now = Date.now();

  if (props.mode === "announce_signed_out") return null;
  const here = typeof location === "undefined" ? "/" : location.pathname + location.search;
  const signIn = `/login?next=${encodeURIComponent(here)}`;

  let body = null;
  switch (view.kind) {
    case "refreshing":
      body = <p>Refreshing your session…</p>;
      break;
    case "idle":
      body = (
        <>
          <p>
            You'll be signed out in {inWords(view.deadline - now)} for inactivity.
          </p>
          <button type="button" class="button small" onClick={() => keeper.current?.staySignedIn()}>
            Stay signed in
          </button>
        </>
      );
      break;
    case "ending":
      body = (
        <p>
          For your security, sessions have a maximum length: this one ends in{" "}
          {inWords(view.deadline - now)}. Save your work; then sign in again to continue.
        </p>
      );
      break;
    case "reconnecting":
      body = (
        <>
          <p>
            Connection lost — {view.retryAt - now > 500
              ? `reconnecting in ${seconds(view.retryAt - now)} s.`
              : "reconnecting…"}
          </p>
          <button type="button" class="button small" onClick={() => keeper.current?.retryNow()}>
            Retry now
          </button>
        </>
      );
      break;
    case "signed_out":
      body = view.signedInAgain
        ? (
          <>
            <p>
              <strong>You're signed in again</strong> in another tab.
            </p>
            <button type="button" class="button small primary" onClick={() => location.reload()}>
              Reload this page
            </button>
          </>
        )
        : (
          <>
            <p>
              <strong>You're signed out.</strong>{" "}
              {SIGNED_OUT_TEXT[view.reason] ?? "Your session has ended."}
            </p>
            {view.reason === "removed_from_workspace"
              // Still signed in, just not here: signing in again would land on a 404.
              ? <a class="button small primary" href="/">Go to your workspaces</a>
              : <a class="button small primary" href={signIn}>Sign in again</a>}
          </>
        );
      break;
    case "error":
      body = (
        <>
          <p>Something went wrong while checking your session.</p>
          <button type="button" class="button small" onClick={() => keeper.current?.retryNow()}>
            Try again
          </button>
          <form method="post" action="/logout" class="inline">
            <button type="submit" class="link-button">Sign out</button>
          </form>
        </>
      );
      break;
  }

  // The live regions stay in the page (empty while hidden) so screen readers announce changes.
  const urgent = view.kind === "signed_out" || view.kind === "error";
  const said = announcement(view, now);
  return (
    <div
      ref={region}
      class="status-banner-region"
      data-state={view.kind}
      data-reason={view.kind === "signed_out" ? view.reason : undefined}
    >
      <div class="visually-hidden" aria-live="polite" aria-atomic="true">
        {urgent ? "" : said}
      </div>
      <div class="visually-hidden" aria-live="assertive" aria-atomic="true">
        {urgent ? said : ""}
      </div>
      {body && <div class={`status-banner status-${view.kind}`}>{body}</div>}
    </div>
  );
}
