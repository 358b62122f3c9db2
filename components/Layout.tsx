/**
 * The page shell: head (stylesheet, island bundle with the request's CSP nonce), header with
 * the workspace switcher island and sign-out when signed in, main content, footer.
 *
 * @example
 * ```tsx
 * <Layout page={pageContext(c)} title="Sign in"><LoginForm /></Layout>
 * ```
 * @module
 */
import type { ComponentChildren } from "preact";
import { Island } from "./Island.tsx";
import WorkspaceSwitcher, { type WorkspaceSwitcherProps } from "../islands/WorkspaceSwitcher.tsx";
import StatusBanner from "../islands/StatusBanner.tsx";

/** What every page needs from the request. */
export interface PageContext {
  nonce: string;
  stylesheet: string;
  islandsScript: string | null;
  /** Signed-in user, for the header. */
  user?: { name: string; email: string; id?: string } | null;
  switcher?: WorkspaceSwitcherProps | null;
  /** Status banner settings (seconds); null turns the banner off (STATUS_BANNER=off). */
  banner?: { refreshBuffer: number; idleWarning: number } | null;
  /** On the sign-in page right after a sign-out: tell the other tabs. */
  announceSignedOut?: boolean;
}

/** Props of {@link Layout}. */
export interface LayoutProps {
  page: PageContext;
  title: string;
  children: ComponentChildren;
  /** Narrow centred card layout for sign-in forms. */
  narrow?: boolean;
}

export function Layout({ page, title, children, narrow }: LayoutProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · Lodge`}</title>
        <link rel="stylesheet" href={page.stylesheet} />
        <link rel="icon" href="/static/favicon.svg" type="image/svg+xml" />
        {page.islandsScript && (
          <script type="module" src={page.islandsScript} nonce={page.nonce}></script>
        )}
      </head>
      <body>
        <a class="skip-link" href="#main">Skip to content</a>
        <header class="site-header">
          <a class="brand" href="/">
            <img src="/static/favicon.svg" alt="" width="22" height="22" /> Lodge
          </a>
          {page.user && page.switcher && (
            <Island name="WorkspaceSwitcher" component={WorkspaceSwitcher} props={page.switcher} />
          )}
          <nav class="header-nav" aria-label="Account">
            {page.user
              ? (
                <>
                  <a
                    class="who"
                    href="/account"
                    title={page.user.name
                      ? `${page.user.name} (${page.user.email})`
                      : page.user.email}
                  >
                    {page.user.name || page.user.email}
                  </a>
                  <form method="post" action="/logout" class="inline">
                    <button type="submit" class="link-button">Sign out</button>
                  </form>
                </>
              )
              : (
                <>
                  <a href="/login">Sign in</a>
                  <a href="/signup" class="button small">Create account</a>
                </>
              )}
          </nav>
        </header>
        {page.user && page.banner && (
          <Island
            name="StatusBanner"
            component={StatusBanner}
            props={{
              mode: "live" as const,
              ...page.banner,
              workspace: page.switcher?.current?.slug ?? null,
              userId: page.user.id ?? null,
            }}
          />
        )}
        {!page.user && page.banner && page.announceSignedOut && (
          <Island
            name="StatusBanner"
            component={StatusBanner}
            props={{
              mode: "announce_signed_out" as const,
              ...page.banner,
              workspace: null,
              userId: null,
            }}
          />
        )}
        <main id="main" class={narrow ? "narrow" : undefined} tabIndex={-1}>
          {children}
        </main>
        <footer class="site-footer">
          <p>Lodge · sign-in and workspaces</p>
        </footer>
      </body>
    </html>
  );
}
