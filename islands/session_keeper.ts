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
 * - Times come from the server as durations ("ms left"), turned into deadlines on this
 *   browser's clock when the answer arrives, so a device clock that is wrong shifts nothing.
 *   Refreshes are at least {@link MIN_REFRESH_GAP_MS} apart whatever the timers say.
 * - A token is only used when it is for the page's own user: this browser may have signed in
 *   as someone else in another tab, and then this page says so instead of carrying on.
 *
 * @example
 * ```ts
 * const keeper = new SessionKeeper(
 *   { refreshBuffer: 120, idleWarning: 300, workspace: null, userId: "01j…" },
 *   render,
 * );
 * keeper.start();
 * ```
 * @module
 */

/** What the banner shows. */
export type BannerView =
  | { kind: "hidden" }
  | { kind: "refreshing" }
  | { kind: "idle"; deadline: number }
  /** The session's absolute lifetime ends soon: activity cannot extend it. */
  | { kind: "ending"; deadline: number }
  | { kind: "reconnecting"; retryAt: number }
  | { kind: "signed_out"; reason: string; signedInAgain?: boolean }
  | { kind: "error" };

/** Settings from the server (seconds). */
export interface KeeperOptions {
  refreshBuffer: number;
  idleWarning: number;
  /** Slug of the workspace the page shows, for the token's active workspace. */
  workspace: string | null;
  /** The (opaque) id of the user the page was rendered for; tokens for anyone else are refused. */
  userId: string | null;
}

/** A token and its deadlines, all on this browser's clock (ms). */
interface TokenInfo {
  token: string;
  userId: string;
  sessionId: string;
  expiresAt: number;
  idleExpiresAt: number;
  sessionExpiresAt: number;
  workspace: string | null;
  receivedAt: number;
}

type Message =
  | { type: "token?"; userId: string | null }
  | { type: "token"; info: TokenInfo }
  | { type: "signed_out"; reason: string; userId?: string | null };

/** BroadcastChannel and Web Lock names shared by every tab of the origin. */
export const CHANNEL_NAME = "lodge-session";
const LOCK_NAME = "lodge-token-refresh";

/** Reconnect delays, seconds (the last repeats). */
const BACKOFF = [1, 2, 4, 8, 15, 30];

/**
 * The least time between two token requests of one tab, ms: whatever goes wrong with the
 * timers (a clock jump, a server answering nonsense), a tab never refreshes in a tight loop.
 * The shortest configurable refresh cycle (ACCESS_TOKEN_TTL=2, REFRESH_BUFFER=1) is 1 s.
 */
export const MIN_REFRESH_GAP_MS = 1000;

/** The banner reason for "this browser is now signed in as another account". */
export const SWITCHED_ACCOUNT = "switched_account";

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
  /** When this tab last asked the server for a token (its clock, ms). */
  #lastFetchAt = -Infinity;
  /** The live channel failed before saying "ready": its token may be refused, get a new one. */
  #channelRefused = false;
  #connectedAt = 0;
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
        this.#post({ type: "signed_out", reason: "logout", userId: this.#opts.userId });
      }
    });
    // Ask open tabs for their token; fetch one only if nobody answers quickly.
    this.#post({ type: "token?", userId: this.#opts.userId });
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

  /** Whether a user id is someone other than the page's user (unknown ids never are). */
  #foreign(userId: string | null | undefined): boolean {
    return !!userId && !!this.#opts.userId && userId !== this.#opts.userId;
  }

  #onMessage(m: Message) {
    if (this.#stopped) {
      // Signed out here, and the same person just signed in again in another tab (a new
      // page asks for a token, or shares one): say so, rather than stay "signed out".
      const again = m.type === "token?" ? m.userId : m.type === "token" ? m.info.userId : null;
      if (
        this.#view.kind === "signed_out" && !this.#view.signedInAgain && again &&
        again === this.#opts.userId
      ) {
        this.#show({ ...this.#view, signedInAgain: true });
      }
      return;
    }
    if (m.type === "token?") {
      if (this.#fresh(this.#token) && !this.#foreign(m.userId)) {
        this.#post({ type: "token", info: this.#token! });
      }
    } else if (m.type === "token") {
      if (this.#foreign(m.info.userId)) {
        // Another tab got a token for someone else: this browser may have signed in as another
        // account. Never use it; ask the server what this browser's session is now.
        void this.refresh({ after: Date.now() });
        return;
      }
      if (m.info.workspace !== this.#opts.workspace && this.#opts.workspace !== null) return;
      if (!this.#token || m.info.expiresAt > this.#token.expiresAt) this.#adopt(m.info);
    } else if (m.type === "signed_out") {
      // Another account's sign-out (a stale tab of the previous account) is not ours.
      if (this.#foreign(m.userId)) return;
      this.#signedOut(m.reason, false);
    }
  }

  #fresh(t: TokenInfo | null): boolean {
    return !!t && t.expiresAt - Date.now() > this.#opts.refreshBuffer * 1000;
  }

  /** Back online or visible again: refresh if needed, and reconnect now, not at the backoff. */
  #wake() {
    if (this.#stopped) return;
    const channelDown = !this.#es || this.#es.readyState === EventSource.CLOSED ||
      this.#view.kind === "reconnecting";
    if (channelDown) {
      this.#attempts = 0;
      void this.retryNow();
    } else if (!this.#fresh(this.#token)) {
      void this.refresh();
    }
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
      const enough = () => {
        const t = this.#token;
        return !opts.stayActive && !!t && this.#fresh(t) && (opts.after ?? 0) <= t.receivedAt;
      };
      if (this.#stopped) return "signed_out" as const;
      if (enough()) return "skipped" as const;
      const wait = this.#lastFetchAt + MIN_REFRESH_GAP_MS - Date.now();
      if (wait > 0 && !opts.stayActive) await new Promise((r) => setTimeout(r, wait));
      if (this.#stopped) return "signed_out" as const;
      // Again after the wait: another tab may have brought a fresh token meanwhile.
      if (enough()) return "skipped" as const;
      this.#lastFetchAt = Date.now();
      this.#timer("slow", 1000, () => {
        if (this.#view.kind === "hidden") this.#show({ kind: "refreshing" });
      });
      try {
        let res: Response;
        const askedAt = Date.now();
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
          const body = await res.json().catch(() => ({}));
          // Someone else's session now, or not a member of this page's workspace any more.
          this.#signedOut(
            this.#foreign(body.userId) ? SWITCHED_ACCOUNT : "removed_from_workspace",
            false,
          );
          return "signed_out" as const;
        }
        if (!res.ok) return res.status >= 502 && res.status <= 504 ? "network" : "error";
        const body = await res.json();
        if (this.#stopped) return "signed_out" as const;
        if (this.#foreign(body.userId)) {
          // The cookie is someone else's now (signed in as another account in another tab).
          this.#signedOut(SWITCHED_ACCOUNT, false);
          return "signed_out" as const;
        }
        // Deadlines from "ms left", counted from when we asked: never later than the server's.
        const info: TokenInfo = {
          token: body.token,
          userId: body.userId,
          sessionId: body.sessionId,
          expiresAt: askedAt + Number(body.expiresInMs),
          idleExpiresAt: askedAt + Number(body.sessionIdleExpiresInMs),
          sessionExpiresAt: askedAt + Number(body.sessionExpiresInMs),
          workspace: body.workspace?.slug ?? null,
          receivedAt: Date.now(),
        };
        if (![info.expiresAt, info.idleExpiresAt, info.sessionExpiresAt].every(isFinite)) {
          return "error" as const;
        }
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
    if (this.#stopped || this.#foreign(info.userId)) return;
    this.#token = info;
    const now = Date.now();
    this.#timer("refresh", info.expiresAt - this.#opts.refreshBuffer * 1000 - now, () => {
      void this.refresh();
    });
    // When the session itself should end, ask the server (it decides, and says why).
    const end = Math.min(info.idleExpiresAt, info.sessionExpiresAt);
    this.#timer("end", end - now + 250, () => void this.refresh({ after: Date.now() }));
    // The server's idle deadline is capped at the absolute one; when they meet, the session ends
    // then whatever the person does, so the warning must not offer "Stay signed in".
    const ending = info.idleExpiresAt >= info.sessionExpiresAt;
    const warnAt = end - this.#opts.idleWarning * 1000;
    if (warnAt <= now) {
      this.#show(ending ? { kind: "ending", deadline: end } : { kind: "idle", deadline: end });
    } else {
      const k = this.#view.kind;
      if (k === "idle" || k === "ending" || k === "error") this.#show({ kind: "hidden" });
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
    // A channel refused before "ready" may have been refused for its token: get a newer one
    // (unless another tab already brought one after that attempt).
    if (!this.#fresh(this.#token) || this.#channelRefused) {
      const r = await this.refresh({
        after: this.#channelRefused ? this.#connectedAt : Date.now(),
      });
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
    this.#connectedAt = Date.now();
    let ready = false;
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
      ready = true;
      this.#channelRefused = false;
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
      if (!ready) this.#channelRefused = true;
      // Take reconnection into our own hands: the token in the URL may be stale by then.
      es.close();
      this.#es = null;
      this.#lost();
    };
  }

  #signedOut(reason: string, broadcast: boolean) {
    if (this.#stopped && this.#view.kind === "signed_out") return;
    this.#stop();
    if (broadcast) this.#post({ type: "signed_out", reason, userId: this.#opts.userId });
    this.#show({ kind: "signed_out", reason });
  }
}
