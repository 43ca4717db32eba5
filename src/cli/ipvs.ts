// Placeholder until the ipvs command lands (see the open issue); prints a clear message.
export const summary = '(ipvs: not built yet)';
export const usage = 'Usage: lvsd ipvs ... (not built yet)';
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('lvsd ipvs: not built yet\n');
  return 70;
}
