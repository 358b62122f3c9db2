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
import { PASSWORD_MIN } from "../lib/password.ts";
import { visibleText } from "../lib/text.ts";

/** Props of {@link Field}. */
export interface FieldProps {
  label: string;
  name: string;
  type?: "text" | "email" | "password";
  value?: string;
  /** The field's own error (text, or text with a link). */
  error?: ComponentChildren;
  hint?: string;
  /** Another element that explains the field, e.g. a form-level alert about it. */
  describedBy?: string;
  /** Marks the field invalid when the error is shown elsewhere (a form-level alert). */
  invalid?: boolean;
  autocomplete?: string;
  required?: boolean;
  autofocus?: boolean;
  /**
   * Browsers count UTF-16 code units (an emoji is two) and stop typing and cut pastes at this
   * length; the server counts code points, after trimming and NFC for text. Give the UTF-16
   * worst case of the server's limit, or leave it out and let the server's message say it.
   */
  maxLength?: number;
  /** Safe as the server's minimum: a value never has fewer UTF-16 units than code points. */
  minLength?: number;
}

/** A labelled input with optional hint and error. */
export function Field(p: FieldProps) {
  const id = `f-${p.name}`;
  const described = [p.hint && `${id}-hint`, p.error && `${id}-error`, p.describedBy]
    .filter(Boolean).join(" ");
  return (
    <div class={p.error ? "field has-error" : "field"}>
      <label for={id}>{p.label}</label>
      {p.hint && <p class="hint" id={`${id}-hint`}>{p.hint}</p>}
      <input
        id={id}
        name={p.name}
        type={p.type ?? "text"}
        value={p.type === "password" || p.value === undefined ? undefined : visibleText(p.value)}
        autocomplete={p.autocomplete}
        required={p.required}
        autofocus={p.autofocus}
        maxLength={p.maxLength}
        minLength={p.minLength}
        aria-invalid={p.error || p.invalid ? "true" : undefined}
        aria-describedby={described || undefined}
      />
      {p.error && <p class="error" id={`${id}-error`}>{p.error}</p>}
    </div>
  );
}

/** Props of {@link NewPasswordField}. */
export interface NewPasswordFieldProps {
  label?: string;
  error?: ComponentChildren;
  hint?: string;
  autofocus?: boolean;
}

/**
 * The field where someone chooses a password: the same rules, hint and browser hints
 * (`autocomplete="new-password"`) on sign-up, reset and change. No `maxlength`: a browser
 * would count 1024 emoji (which the server accepts) as 2048, and cut a long pasted password
 * short without a word, leaving a password manager with one the account does not have.
 *
 * @example
 * ```tsx
 * <NewPasswordField label="New password" error={errors.password} />
 * ```
 */
export function NewPasswordField(p: NewPasswordFieldProps) {
  return (
    <Field
      label={p.label ?? "Password"}
      name="password"
      type="password"
      error={p.error}
      hint={p.hint ?? `At least ${PASSWORD_MIN} characters. Long passphrases are welcome.`}
      autocomplete="new-password"
      required
      autofocus={p.autofocus}
      minLength={PASSWORD_MIN}
    />
  );
}

/**
 * A message box above a form; `role="alert"` for errors so screen readers announce it. Give
 * it an `id` when fields point at it with `describedBy` (read out when the field has focus,
 * which also covers a page that loads with the alert already in it).
 */
export function Alert(
  { kind, children, id }: {
    kind: "error" | "info" | "success";
    children: ComponentChildren;
    id?: string;
  },
) {
  return (
    <div id={id} class={`alert alert-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </div>
  );
}
