/**
 * Server-side island marker: renders the component's HTML inside an element that carries
 * its name and JSON props; the browser bundle hydrates every marker (islands/_client.ts).
 *
 * @example
 * ```tsx
 * <Island name="WorkspaceSwitcher" component={WorkspaceSwitcher} props={{ current, others }} />
 * ```
 * @module
 */
import type { ComponentType } from "preact";

/** Props of {@link Island}. */
export interface IslandProps<P> {
  /** The island file's base name in islands/ (e.g. "WorkspaceSwitcher"). */
  name: string;
  component: ComponentType<P>;
  props: P;
}

/** An island marker with server-rendered content. */
export function Island<P>({ name, component: C, props }: IslandProps<P>) {
  return (
    <lodge-island data-island={name} data-props={JSON.stringify(props)}>
      {/* @ts-ignore generic component props */}
      <C {...props} />
    </lodge-island>
  );
}

declare module "preact" {
  namespace JSX {
    interface IntrinsicElements {
      "lodge-island": HTMLAttributes<HTMLElement> & { "data-island": string; "data-props": string };
    }
  }
}
