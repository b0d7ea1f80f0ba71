/** `eventsync audit`: checks DESIGN.md's invariant across both services; non-zero exit on any discrepancy. */
import { Command } from 'commander';
import { AuditReadRefused, auditSystem } from '../../platform/audit.js';
import { cliContext, parseInteger } from '../context.js';
import { ApiRefusal, EXIT, count, paint, printJson } from '../output.js';

export function auditCommand(): Command {
  return new Command('audit')
    .description('check seat counts and holds against tickets; exits 1 if anything is inconsistent')
    .option('--settle <seconds>', 'ignore records younger than this (purchases in flight)', parseInteger('--settle'), 30)
    .addHelpText('after', '\nExamples:\n  eventsync audit\n  eventsync audit --settle 0 --json')
    .action(async (options: { settle: number }, command: Command) => {
      const context = cliContext(command);
      const report = await auditSystem(context.events, context.tickets, options.settle).catch((error: unknown) => {
        throw error instanceof AuditReadRefused ? new ApiRefusal(error.status, error.problem) : error;
      });
      if (context.options.json) printJson(report);
      else {
        for (const problem of report.problems) process.stdout.write(`${paint('red', '✗')} ${problem}\n`);
        const summary = `${count(report.events, 'event')}, ${count(report.tickets, 'ticket')}, ${count(report.holds, 'live hold')} checked`;
        process.stdout.write(report.problems.length === 0 ? `${paint('green', '✓')} consistent: ${summary}\n` : `${count(report.problems.length, 'discrepancy', 'discrepancies')} (${summary})\n`);
      }
      if (report.problems.length > 0) process.exitCode = EXIT.refused;
    });
}
