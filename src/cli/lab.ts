// Placeholder until the lab command lands (see the open issue); prints a clear message.
export const summary = '(lab: not built yet)';
export const usage = 'Usage: lvsd lab ... (not built yet)';
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('lvsd lab: not built yet\n');
  return 70;
}
