/**
 * The workspace switcher in the header. Server-rendered as a `<details>` menu of links
 * (works without JavaScript); hydrated, it closes on Escape or an outside click and
 * moves focus with the arrow keys.
 *
 * @example
 * ```tsx
 * <WorkspaceSwitcher current={{ slug: "acme", name: "Acme" }} workspaces={[...]} />
 * ```
 * @module
 */
import { useEffect, useRef } from "preact/hooks";

/** One entry in the switcher. */
export interface SwitcherEntry {
  slug: string;
  name: string;
  role: string;
}

/** Props: the current workspace (null on pages outside one) and all of the user's. */
export interface WorkspaceSwitcherProps {
  current: { slug: string; name: string } | null;
  workspaces: SwitcherEntry[];
}

export default function WorkspaceSwitcher({ current, workspaces }: WorkspaceSwitcherProps) {
  const ref = useRef<HTMLDetailsElement>(null);

  useEffect(() => {
    const details = ref.current;
    if (!details) return;
    details.dataset.hydrated = "true";
    const close = (focusSummary: boolean) => {
      if (!details.open) return;
      details.open = false;
      if (focusSummary) details.querySelector("summary")?.focus();
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") return close(true);
      if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
      const links = [...details.querySelectorAll<HTMLAnchorElement>("a")];
      if (!links.length) return;
      e.preventDefault();
      if (!details.open) details.open = true;
      const i = links.indexOf(document.activeElement as HTMLAnchorElement);
      const next = e.key === "ArrowDown"
        ? (i + 1) % links.length
        : (i - 1 + links.length) % links.length;
      links[i === -1 ? 0 : next].focus();
    };
    const onClick = (e: MouseEvent) => {
      if (!details.contains(e.target as Node)) close(false);
    };
    details.addEventListener("keydown", onKey);
    document.addEventListener("click", onClick);
    return () => {
      details.removeEventListener("keydown", onKey);
      document.removeEventListener("click", onClick);
    };
  }, []);

  return (
    <details class="switcher" ref={ref}>
      {/* The label may be cut short with an ellipsis: the title shows it whole. */}
      <summary title={current?.name ?? "Workspaces"}>
        <span class="visually-hidden">Switch workspace. Current:</span>
        <span class="switcher-current">{current?.name ?? "Workspaces"}</span>
      </summary>
      <nav class="switcher-menu" aria-label="Your workspaces">
        <ul>
          {workspaces.map((w) => (
            <li key={w.slug}>
              <a
                href={`/w/${encodeURIComponent(w.slug)}`}
                aria-current={w.slug === current?.slug ? "page" : undefined}
              >
                <span>{w.name}</span>
                <small>{w.role}</small>
              </a>
            </li>
          ))}
        </ul>
      </nav>
    </details>
  );
}
