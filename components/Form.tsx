/**
 * Form pieces: labelled fields with their error text tied by `aria-describedby`, and a
 * form-level alert.
 *
 * @example
 * ```tsx
 * <Field label="Email" name="email" type="email" value={values.email} error={errors.email} />
 * ```
 * @module
 */
import type { ComponentChildren } from "preact";

/** Props of {@link Field}. */
export interface FieldProps {
  label: string;
  name: string;
  type?: "text" | "email" | "password";
  value?: string;
  error?: string;
  hint?: string;
  autocomplete?: string;
  required?: boolean;
  autofocus?: boolean;
  maxLength?: number;
  minLength?: number;
}

/** A labelled input with optional hint and error. */
export function Field(p: FieldProps) {
  const id = `f-${p.name}`;
  const described = [p.hint && `${id}-hint`, p.error && `${id}-error`].filter(Boolean).join(" ");
  return (
    <div class={p.error ? "field has-error" : "field"}>
      <label for={id}>{p.label}</label>
      {p.hint && <p class="hint" id={`${id}-hint`}>{p.hint}</p>}
      <input
        id={id}
        name={p.name}
        type={p.type ?? "text"}
        value={p.type === "password" ? undefined : p.value}
        autocomplete={p.autocomplete}
        required={p.required}
        autofocus={p.autofocus}
        maxLength={p.maxLength}
        minLength={p.minLength}
        aria-invalid={p.error ? "true" : undefined}
        aria-describedby={described || undefined}
      />
      {p.error && <p class="error" id={`${id}-error`}>{p.error}</p>}
    </div>
  );
}

/** A message box above a form; `role="alert"` for errors so screen readers announce it. */
export function Alert(
  { kind, children }: { kind: "error" | "info" | "success"; children: ComponentChildren },
) {
  return (
    <div class={`alert alert-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </div>
  );
}
