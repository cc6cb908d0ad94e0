import { firstMatch } from "./glob.js";

/**
 * Role-based access over permissions, which are exposed names: `<server>__<tool>`,
 * `<server>__<prompt>`, and `<server>__<resource uri>` for resource reads. An identity has
 * the roles its binding lists, plus those bound to "*" (every identity). A permission is
 * granted when some role allows it and no role denies it: deny wins. No role, no access.
 */
export interface RoleSpec {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export interface RbacSpec {
  readonly roles: Readonly<Record<string, RoleSpec>>;
  /** identity → role names; "*" binds roles to every identity. */
  readonly bindings: Readonly<Record<string, readonly string[]>>;
}

export const EVERY_IDENTITY = "*";

export type AccessDecision =
  | { readonly allowed: true; readonly role: string; readonly rule: string }
  | {
      readonly allowed: false;
      readonly identity: string;
      /** The permission that was missing: the exposed name asked for. */
      readonly permission: string;
      readonly roles: readonly string[];
      /** Set when a deny rule decided, rather than the absence of an allow. */
      readonly deniedBy?: { readonly role: string; readonly rule: string };
      readonly message: string;
    };

export class Rbac {
  /** No `rbac:` section: every identity may do everything (the gateway warns about it). */
  static allowAll(): Rbac {
    return new Rbac(undefined);
  }

  constructor(private readonly spec: RbacSpec | undefined) {}

  get enabled(): boolean {
    return this.spec !== undefined;
  }

  rolesOf(identity: string): string[] {
    if (this.spec === undefined) return [];
    const own = this.spec.bindings[identity] ?? [];
    const everyone = identity === EVERY_IDENTITY ? [] : (this.spec.bindings[EVERY_IDENTITY] ?? []);
    return [...new Set([...own, ...everyone])];
  }

  decide(identity: string, permission: string): AccessDecision {
    if (this.spec === undefined) return { allowed: true, role: "*", rule: "rbac disabled" };
    const roles = this.rolesOf(identity);
    let allowedBy: { role: string; rule: string } | undefined;
    for (const role of roles) {
      const spec = this.spec.roles[role];
      if (spec === undefined) continue;
      const deny = firstMatch(spec.deny, permission);
      if (deny !== undefined) {
        return denial(identity, permission, roles, { role, rule: deny });
      }
      const allow = firstMatch(spec.allow, permission);
      if (allow !== undefined) allowedBy ??= { role, rule: allow };
    }
    return allowedBy !== undefined ? { allowed: true, ...allowedBy } : denial(identity, permission, roles);
  }

  allows(identity: string, permission: string): boolean {
    return this.decide(identity, permission).allowed;
  }
}

function denial(identity: string, permission: string, roles: readonly string[], deniedBy?: { role: string; rule: string }): AccessDecision {
  const who = `identity ${JSON.stringify(identity)}`;
  const message =
    deniedBy !== undefined
      ? `${who} lacks permission ${JSON.stringify(permission)}: role ${JSON.stringify(deniedBy.role)} denies it (deny ${JSON.stringify(deniedBy.rule)})`
      : roles.length === 0
        ? `${who} lacks permission ${JSON.stringify(permission)}: it has no role (bind one under rbac.bindings)`
        : `${who} lacks permission ${JSON.stringify(permission)}: none of its roles (${roles.join(", ")}) allows it`;
  return { allowed: false, identity, permission, roles, ...(deniedBy !== undefined ? { deniedBy } : {}), message };
}
