// Placeholder until the demo command lands (see the open issue); prints a clear message.
export const summary = '(demo: not built yet)';
export const usage = 'Usage: lvsd demo ... (not built yet)';
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('lvsd demo: not built yet\n');
  return 70;
}
