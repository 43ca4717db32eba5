/** Every error lvsd raises carries a stable machine-readable code and, when it wraps one, the cause. */
export type ErrorCode =
  | 'CONFIG_SYNTAX'
  | 'CONFIG_SCHEMA'
  | 'CONFIG_SEMANTIC'
  | 'CONFIG_IO'
  | 'IPVS_UNAVAILABLE'
  | 'NETLINK'
  | 'NETLINK_DECODE'
  | 'VRRP_DECODE'
  | 'SYNC_DECODE'
  | 'LAB_UNAVAILABLE'
  | 'LOCKED'
  | 'IO'
  | 'INTERNAL'
  | (string & {});

export class LvsdError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'LvsdError';
  }
}

export function isLvsdError(e: unknown, code?: ErrorCode): e is LvsdError {
  return e instanceof LvsdError && (code === undefined || e.code === code);
}

/** Message of any thrown value, for logs. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
