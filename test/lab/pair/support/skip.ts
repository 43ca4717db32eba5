/** Why a test of test/lab/pair/ (they boot their own guests with labPair, on the host) cannot run here, or false. */
import { existsSync } from 'node:fs';
import { UML_KERNEL, UML_SWITCH } from '../../../../src/lab/uml.js';

export const pairSkip: string | false =
  process.env.LVSD_IN_LAB === '1'
    ? 'boots its own guests: runs on the host (node scripts/test.mjs --only lab)'
    : !existsSync(UML_KERNEL) ? `${UML_KERNEL} missing (apt-get install user-mode-linux)`
      : !existsSync(UML_SWITCH) ? `${UML_SWITCH} missing (apt-get install uml-utilities)`
        : process.getuid?.() !== 0 ? 'needs root' : false;
