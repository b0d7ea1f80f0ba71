/** `npm start`: both services in one terminal. */
import { runSystem } from './system.js';

process.exitCode = await runSystem();
