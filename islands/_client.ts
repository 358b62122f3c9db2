/**
 * The browser runtime for islands: finds every `<lodge-island>` marker and hydrates it with
 * the component of that name and the marker's JSON props. The build (scripts/build_islands.ts)
 * generates the entry that passes in every component of islands/.
 *
 * @example
 * ```ts
 * hydrateIslands({ WorkspaceSwitcher });
 * ```
 * @module
 */
import { type ComponentType, h, hydrate } from "preact";

/** Hydrates every island marker on the page. */
export function hydrateIslands(registry: Record<string, ComponentType<Record<string, unknown>>>) {
  for (const el of document.querySelectorAll<HTMLElement>("lodge-island[data-island]")) {
    const component = registry[el.dataset.island!];
    if (!component) {
      console.warn(`Lodge: no island named ${el.dataset.island}`);
      continue;
    }
    let props: Record<string, unknown> = {};
    try {
      props = JSON.parse(el.dataset.props ?? "{}");
    } catch {
      console.warn(`Lodge: bad props for island ${el.dataset.island}`);
      continue;
    }
    hydrate(h(component, props), el);
  }
  document.documentElement.dataset.islands = "hydrated";
}
