/** Rows of `ipvsadm -Lnc` or `lvsd sync show` text, without the expiry (it ticks between two reads). */
export function lncRows(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 6 && /^(TCP|UDP|SCTP|IP)$/.test(f[0]!) && /^\d+:\d\d$/.test(f[1]!))
    .map((f) => [f[0], ...f.slice(2)].join(' '));
}

/**
 * `lvsd sync show` against `ipvsadm -Lnc` on the same director: the rows of the first (the peer-synced
 * table) that the kernel does not list, and how many the first has.
 */
export function missingFromKernel(syncShow: string, ipvsadm: string): { shown: string[]; missing: string[] } {
  const kernel = new Set(lncRows(ipvsadm));
  const shown = lncRows(syncShow);
  return { shown, missing: shown.filter((r) => !kernel.has(r)) };
}
