/**
 * Polls fn until it yields a value (errors count as "not yet"); throws naming `what` after ms. The
 * default is generous: an `lvsd run` inside the guest took over 60 s to start on the 2-core machine
 * under load 18 (every exec and module load goes through ptrace in UML).
 */
export async function until<T>(fn: () => Promise<T | undefined>, what: string | (() => string), ms = 180000, everyMs = 500): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
