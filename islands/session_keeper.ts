/**
 * The browser side of "sessions that never fail silently" (used by the StatusBanner island).
 *
 * - Keeps an access token from `POST /api/token`, refreshing it `refreshBuffer` seconds before
 *   it expires, when the tab becomes visible and when the network comes back.
 * - Exactly one tab refreshes at a time (Web Locks); the new token reaches the other tabs over
 *   a BroadcastChannel, and a tab that waited for the lock re-checks before fetching, so N tabs
 *   make one request per cycle.
 * - Holds the live channel (`GET /api/events`), reconnecting with backoff and `Last-Event-ID`.
 * - Any sign-out (this tab's form, another tab, the server's revocation event, a refused
 *   refresh) stops everything and is broadcast, so every tab says so within a second.
 *
 * @example
 * ```ts
 * const keeper = new SessionKeeper({ refreshBuffer: 120, idleWarning: 300, workspace: null }, render);
 * keeper.start();
 * ```
 * @module
 */

/** What the banner shows. */
export type BannerView =
  | { kind: "hidden" }
  | { kind: "refreshing" }
  | { kind: "idle"; deadline: number }
  | { kind: "reconnecting"; retryAt: number }
  | { kind: "signed_out"; reason: string }
  | { kind: "error" };

/** Settings from the server (seconds). */
export interface KeeperOptions {
  refreshBuffer: number;
  idleWarning: number;
  /** Slug of the workspace the page shows, for the token's active workspace. */
  workspace: string | null;
}

interface TokenInfo {
  token: string;
  expiresAt: number;
  idleExpiresAt: number;
  sessionExpiresAt: number;
  workspace: string | null;
  receivedAt: number;
}

type Message =
  | { type: "token?" }
  | { type: "token"; info: TokenInfo }
  | { type: "signed_out"; reason: string };

/** BroadcastChannel and Web Lock names shared by every tab of the origin. */
export const CHANNEL_NAME = "lodge-session";
const LOCK_NAME = "lodge-token-refresh";

/** Reconnect delays, seconds (the last repeats). */
const BACKOFF = [1, 2, 4, 8, 15, 30];

/**
 * Tells every other tab that this browser signed out (the sign-in page calls it too).
 *
 * @example
 * ```ts
 * announceSignedOut("logout"); // every other tab shows "signed out"
 * ```
 */
export function announceSignedOut(reason = "logout"): void {
  if (typeof BroadcastChannel === "undefined") return;
  const ch = new BroadcastChannel(CHANNEL_NAME);
  ch.postMessage({ type: "signed_out", reason } satisfies Message);
  ch.close();
}

/** The token and live-channel keeper of one tab. */
export class SessionKeeper {
  #opts: KeeperOptions;
  #render: (v: BannerView) => void;
  #view: BannerView = { kind: "hidden" };
  #token: TokenInfo | null = null;
  #channel: BroadcastChannel | null = null;
  #es: EventSource | null = null;
  #lastEventId: string | null = null;
  #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #attempts = 0;
  #stopped = false;
  #cleanup: (() => void)[] = [];

  constructor(opts: KeeperOptions, render: (v: BannerView) => void) {
    this.#opts = opts;
    this.#render = render;
  }

  /** The current view (for tests and the island's first render). */
  get view(): BannerView {
    return this.#view;
  }

  #show(v: BannerView) {
    this.#view = v;
    this.#render(v);
  }

  #timer(name: string, ms: number, fn: () => void) {
    clearTimeout(this.#timers.get(name));
    this.#timers.set(name, setTimeout(fn, Math.max(0, Math.min(ms, 2_000_000_000))));
  }

  #on(target: EventTarget, type: string, fn: (e: Event) => void) {
    target.addEventListener(type, fn);
    this.#cleanup.push(() => target.removeEventListener(type, fn));
  }

  /** Starts: adopts a peer's token or fetches one, then opens the live channel. */
  start(): void {
    if (typeof BroadcastChannel !== "undefined") {
      this.#channel = new BroadcastChannel(CHANNEL_NAME);
      this.#channel.onmessage = (e) => this.#onMessage(e.data as Message);
    }
    this.#on(document, "visibilitychange", () => {
      if (document.visibilityState === "visible") this.#wake();
    });
    this.#on(window, "online", () => this.#wake());
    // A page restored from the back/forward cache may hold a token of a session that ended.
    this.#on(window, "pageshow", (e) => {
      if ((e as PageTransitionEvent).persisted) void this.refresh({ after: Date.now() });
    });
    this.#on(document, "submit", (e) => {
      const form = e.target as HTMLFormElement;
      const action = new URL(form.action, location.href);
      const signsOut = action.pathname === "/logout" || form.dataset.signout === "this-browser";
      if (action.origin === location.origin && signsOut) {
        // Tell the other tabs now: this page is about to navigate away.
        this.#stop();
        this.#post({ type: "signed_out", reason: "logout" });
      }
    });
    // Ask open tabs for their token; fetch one only if nobody answers quickly.
    this.#post({ type: "token?" });
    this.#timer("first", this.#channel ? 150 : 0, () => {
      if (this.#token) this.#connect();
      else void this.refresh().then(() => this.#connect());
    });
  }

  /** Stops timers, listeners and the stream (page teardown). */
  dispose(): void {
    this.#stop();
    for (const fn of this.#cleanup) fn();
    this.#channel?.close();
  }

  #stop() {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    this.#es?.close();
    this.#es = null;
    this.#token = null;
  }

  #post(m: Message) {
    this.#channel?.postMessage(m);
  }

  #onMessage(m: Message) {
    if (this.#stopped) return;
    if (m.type === "token?") {
      if (this.#fresh(this.#token)) this.#post({ type: "token", info: this.#token! });
    } else if (m.type === "token") {
      if (m.info.workspace !== this.#opts.workspace && this.#opts.workspace !== null) return;
      if (!this.#token || m.info.expiresAt > this.#token.expiresAt) this.#adopt(m.info);
    } else if (m.type === "signed_out") {
      this.#signedOut(m.reason, false);
    }
  }

  #fresh(t: TokenInfo | null): boolean {
    return !!t && t.expiresAt - Date.now() > this.#opts.refreshBuffer * 1000;
  }

  #wake() {
    if (this.#stopped) return;
    if (!this.#fresh(this.#token)) void this.refresh();
    else if (!this.#es || this.#view.kind === "reconnecting") this.retryNow();
  }

  /**
   * Gets a new token unless one fresh enough arrived (from any tab) after `after` ms; only one
   * tab at a time runs this. `stayActive` also counts as activity for the idle timeout.
   */
  async refresh(
    opts: { stayActive?: boolean; after?: number } = {},
  ): Promise<"ok" | "skipped" | "network" | "error" | "signed_out"> {
    if (this.#stopped) return "signed_out";
    const run = async () => {
      if (this.#stopped) return "signed_out" as const;
      const t = this.#token;
      if (!opts.stayActive && t && this.#fresh(t) && (opts.after ?? 0) <= t.receivedAt) {
        return "skipped" as const;
      }
      this.#timer("slow", 1000, () => {
        if (this.#view.kind === "hidden") this.#show({ kind: "refreshing" });
      });
      try {
        let res: Response;
        try {
          res = await fetch("/api/token", {
            method: "POST",
            credentials: "same-origin",
            // Other tabs wait on the lock: never hold it for a request that hangs.
            signal: AbortSignal.timeout(10_000),
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              ...(this.#opts.workspace ? { workspace: this.#opts.workspace } : {}),
              ...(opts.stayActive ? { stayActive: true } : {}),
            }),
          });
        } catch {
          return "network" as const;
        }
        if (this.#stopped) return "signed_out" as const;
        if (res.status === 401) {
          const body = await res.json().catch(() => ({}));
          this.#signedOut(String(body.reason ?? "unknown"), true);
          return "signed_out" as const;
        }
        if (res.status === 403 && this.#opts.workspace) {
          // Not a member of this page's workspace any more.
          this.#signedOut("removed_from_workspace", false);
          return "signed_out" as const;
        }
        if (!res.ok) return res.status >= 502 && res.status <= 504 ? "network" : "error";
        const body = await res.json();
        const info: TokenInfo = {
          token: body.token,
          expiresAt: Date.parse(body.expiresAt),
          idleExpiresAt: Date.parse(body.sessionIdleExpiresAt),
          sessionExpiresAt: Date.parse(body.sessionExpiresAt),
          workspace: body.workspace?.slug ?? null,
          receivedAt: Date.now(),
        };
        this.#adopt(info);
        this.#post({ type: "token", info });
        // Hold the lock a moment so the token reaches tabs queued behind it before they look.
        await new Promise((r) => setTimeout(r, 50));
        return "ok" as const;
      } finally {
        clearTimeout(this.#timers.get("slow"));
      }
    };
    const result = typeof navigator !== "undefined" && navigator.locks
      ? await navigator.locks.request(LOCK_NAME, run)
      : await run();
    if (result === "network") this.#lost();
    else if (result === "error") this.#show({ kind: "error" });
    else if (result !== "signed_out" && this.#view.kind === "refreshing") {
      this.#show({ kind: "hidden" });
    }
    return result;
  }

  #adopt(info: TokenInfo) {
    if (this.#stopped) return;
    this.#token = info;
    const now = Date.now();
    this.#timer("refresh", info.expiresAt - this.#opts.refreshBuffer * 1000 - now, () => {
      void this.refresh();
    });
    // When the session itself should end, ask the server (it decides, and says why).
    const end = Math.min(info.idleExpiresAt, info.sessionExpiresAt);
    this.#timer("end", end - now + 250, () => void this.refresh({ after: Date.now() }));
    const warnAt = info.idleExpiresAt - this.#opts.idleWarning * 1000;
    if (warnAt <= now && info.idleExpiresAt <= info.sessionExpiresAt) {
      this.#show({ kind: "idle", deadline: info.idleExpiresAt });
    } else {
      if (this.#view.kind === "idle" || this.#view.kind === "error") this.#show({ kind: "hidden" });
      // Another tab's activity may have moved the deadline: look again before warning.
      this.#timer("idle", warnAt - now, () => void this.refresh({ after: Date.now() }));
    }
  }

  /** "Stay signed in": counts as activity, so the idle deadline moves. */
  staySignedIn(): Promise<unknown> {
    return this.refresh({ stayActive: true });
  }

  /** "Try again" / "Retry now": a fresh token if needed, then the live channel. */
  async retryNow(): Promise<void> {
    if (this.#stopped) return;
    clearTimeout(this.#timers.get("retry"));
    if (!this.#fresh(this.#token)) {
      const r = await this.refresh({ after: Date.now() });
      if (r !== "ok" && r !== "skipped") return;
    }
    this.#connect();
  }

  #lost() {
    if (this.#stopped) return;
    document.documentElement.dataset.live = "lost";
    const delay = BACKOFF[Math.min(this.#attempts, BACKOFF.length - 1)];
    this.#attempts++;
    const retryAt = Date.now() + delay * 1000;
    this.#show({ kind: "reconnecting", retryAt });
    this.#timer("retry", delay * 1000, () => void this.retryNow());
  }

  #connect() {
    if (this.#stopped || !this.#token) return;
    this.#es?.close();
    const params = new URLSearchParams({ access_token: this.#token.token });
    if (this.#lastEventId) params.set("last_event_id", this.#lastEventId);
    const es = new EventSource(`/api/events?${params}`);
    this.#es = es;
    // A connection can die without an error event (sleep, a dropped NAT entry): if nothing,
    // not even a heartbeat, arrives for 2.5 heartbeats, treat the channel as lost.
    let heartbeatMs = 30_000;
    const alive = () => {
      this.#timer("watchdog", heartbeatMs * 2.5, () => {
        if (this.#es !== es || this.#stopped) return;
        es.close();
        this.#es = null;
        this.#lost();
      });
    };
    const track = (e: Event) => {
      alive();
      const id = (e as MessageEvent).lastEventId;
      if (id) this.#lastEventId = id;
    };
    es.addEventListener("heartbeat", alive);
    es.addEventListener("ready", (e) => {
      try {
        const seconds = Number(JSON.parse((e as MessageEvent).data).heartbeat);
        if (seconds > 0) heartbeatMs = seconds * 1000;
      } catch { /* keep the default */ }
      alive();
      this.#attempts = 0;
      document.documentElement.dataset.live = "open";
      if (this.#view.kind === "reconnecting" || this.#view.kind === "error") {
        this.#show({ kind: "hidden" });
        if (this.#token) this.#adopt(this.#token);
      }
    });
    es.addEventListener("session.revoked", (e) => {
      track(e);
      let reason = "revoked";
      try {
        reason = JSON.parse((e as MessageEvent).data).reason ?? reason;
      } catch { /* keep the default */ }
      this.#signedOut(reason, true);
    });
    // Workspace events (the workspaces issue publishes them): losing this page's workspace
    // ends this page's access, though the session lives on.
    es.addEventListener("workspace.member_removed", (e) => {
      track(e);
      try {
        const data = JSON.parse((e as MessageEvent).data);
        if (this.#opts.workspace && data.slug === this.#opts.workspace) {
          this.#signedOut("removed_from_workspace", false);
        }
      } catch { /* ignore a malformed event */ }
    });
    es.addEventListener("token_expired", () => {
      clearTimeout(this.#timers.get("watchdog"));
      es.close();
      if (this.#es === es) this.#es = null;
      void this.retryNow();
    });
    es.onmessage = track;
    es.onerror = () => {
      if (this.#stopped || this.#es !== es) return;
      clearTimeout(this.#timers.get("watchdog"));
      // Take reconnection into our own hands: the token in the URL may be stale by then.
      es.close();
      this.#es = null;
      this.#lost();
    };
  }

  #signedOut(reason: string, broadcast: boolean) {
    if (this.#stopped && this.#view.kind === "signed_out") return;
    this.#stop();
    if (broadcast) this.#post({ type: "signed_out", reason });
    this.#show({ kind: "signed_out", reason });
  }
}
