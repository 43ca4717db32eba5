export const summary = '(run: being built)';
export const usage = 'Usage: lvsd run';
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('lvsd run: not built yet\n');
  return 70;
}
