import { MemoryDataplane } from '../../src/ipvs/memory.js';
import { dataplaneContract } from './contract.js';

dataplaneContract('memory', { open: async () => new MemoryDataplane(), daemonInterface: 'lo' });
