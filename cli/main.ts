#!/usr/bin/env node
/** The `eventsync` command: commander wiring over the typed clients; no business rules here. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { repoRoot } from '../openapi/spec.js';
import { join } from 'node:path';
import { venuesCommand } from './commands/venues.js';
import { eventsCommand } from './commands/events.js';
import { ticketsCommand } from './commands/tickets.js';
import { auditCommand } from './commands/audit.js';
import { statusCommand } from './commands/status.js';
import { webhooksCommand } from './commands/webhooks.js';
import { waitlistCommand } from './commands/waitlist.js';
import { EXIT, printError, reportError } from './output.js';
import { closeClients } from './context.js';
import { runSystem } from './system.js';

const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };

const program = new Command('eventsync')
  .description('EventSync from a terminal: venues, events, tickets, webhooks and the consistency audit')
  .version(version)
  .option('--event-url <url>', 'event-service URL (env EVENTSYNC_EVENT_URL, default http://localhost:5001)')
  .option('--ticket-url <url>', 'ticket-service URL (env EVENTSYNC_TICKET_URL, default http://localhost:5002)')
  .option('--admin-token <token>', 'admin token (env EVENTSYNC_ADMIN_TOKEN)')
  .option('--json', "print the API's JSON, one document, for scripts")
  .addHelpText(
    'after',
    `
Exit codes: 0 success, 1 refused by the API (4xx) or audit found discrepancies, 2 usage error, 3 service unreachable or 5xx.

Examples:
  eventsync up
  eventsync events create --name "Tech Conference 2025" --date 2025-06-15T09:00:00 --venue "Convention Center" --tickets 200
  eventsync tickets buy --event 1 --name "John Doe" --email john@example.com --quantity 2
  eventsync audit
  eventsync status`,
  );

program
  .command('up')
  .description('start both services in this terminal (the same as `npm start`); Ctrl-C stops them')
  .addHelpText('after', '\nExample:\n  EVENT_SERVICE_PORT=6001 TICKET_SERVICE_PORT=6002 eventsync up')
  .action(async () => {
    process.exitCode = await runSystem();
  });
program.addCommand(venuesCommand());
program.addCommand(eventsCommand());
program.addCommand(ticketsCommand());
program.addCommand(webhooksCommand());
program.addCommand(waitlistCommand());
program.addCommand(auditCommand());
program.addCommand(statusCommand());

// Every command gets --version, usage errors exit 2 instead of commander's 1, and are printed as all errors are.
let commanderPrinted = false;
const configure = (command: Command) => {
  command.exitOverride();
  command.configureOutput({
    outputError: (text) => {
      commanderPrinted = true;
      printError(text.replace(/^error: /, '').trimEnd());
    },
  });
  if (command !== program) command.version(version);
  command.commands.forEach(configure);
};
configure(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    const success = error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version';
    // An argument checked inside an action (an id, a URL) is not printed by commander itself.
    if (!success && !commanderPrinted) printError(error.message);
    process.exitCode = success ? EXIT.ok : EXIT.usage;
  } else {
    process.exitCode = reportError(error);
  }
} finally {
  await closeClients();
}
