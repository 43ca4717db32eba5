export const summary = '(status: being built)';
export const usage = 'Usage: lvsd status';
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('lvsd status: not built yet\n');
  return 70;
}
