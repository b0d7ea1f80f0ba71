/** `eventsync venues …` */
import { Command } from 'commander';
import type { components } from '../../openapi/generated/event-service.js';
import { MAX_PAGE, cliContext, expectOk, parseInteger } from '../context.js';
import { printJson, printRecord, printTable } from '../output.js';

type Venue = components['schemas']['Venue'];

const printVenue = (v: Venue) =>
  printRecord([
    ['id', v.id],
    ['name', v.name],
    ['address', v.address],
    ['city', v.city],
    ['capacity', v.capacity],
    ['description', v.description],
  ]);

interface VenueFields {
  name?: string;
  address?: string;
  city?: string;
  capacity?: number;
  description?: string;
}

function venueBody(fields: VenueFields) {
  return Object.fromEntries(Object.entries({ name: fields.name, address: fields.address, city: fields.city, capacity: fields.capacity, description: fields.description }).filter(([, v]) => v !== undefined));
}

function withVenueFields(command: Command, required: boolean): Command {
  const c = required ? command.requiredOption('--name <name>', 'venue name').requiredOption('--capacity <n>', 'seats', parseInteger('--capacity', 1)) : command.option('--name <name>', 'venue name').option('--capacity <n>', 'seats', parseInteger('--capacity', 1));
  return c.option('--address <text>', 'street address').option('--city <city>', 'city').option('--description <text>', 'description');
}

export function venuesCommand(): Command {
  const venues = new Command('venues').description('manage venues and their capacity');
  venues
    .command('list')
    .description('list venues')
    .option('--limit <n>', `venues per page (1-${MAX_PAGE})`, parseInteger('--limit', 1, MAX_PAGE), 100)
    .addHelpText('after', '\nExample:\n  eventsync venues list')
    .action(async (options: { limit: number }, command: Command) => {
      const context = cliContext(command);
      const list = expectOk(await context.events.call('listVenues', { query: { limit: options.limit } })).body;
      if (context.options.json) printJson(list);
      else if (list.length === 0) process.stdout.write('no venues\n');
      else printTable(['id', 'name', 'city', 'capacity'], list.map((v) => [v.id, v.name, v.city, v.capacity]));
    });
  venues
    .command('get <id>')
    .description('show one venue')
    .addHelpText('after', '\nExample:\n  eventsync venues get 1')
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      const venue = expectOk(await context.events.call('getVenue', { path: { id: parseInteger('id', 1)(id) } })).body;
      if (context.options.json) printJson(venue);
      else printVenue(venue);
    });
  withVenueFields(venues.command('create').description('create a venue'), true)
    .addHelpText('after', '\nExample:\n  eventsync venues create --name "Convention Center" --capacity 500 --city Springfield')
    .action(async (options: VenueFields, command: Command) => {
      const context = cliContext(command);
      const venue = expectOk(await context.events.call('createVenue', { body: venueBody(options) as components['schemas']['VenueCreate'] })).body;
      if (context.options.json) printJson(venue);
      else {
        process.stdout.write(`created venue ${venue.id}\n`);
        printVenue(venue);
      }
    });
  withVenueFields(venues.command('update <id>').description('change some fields of a venue'), false)
    .addHelpText('after', '\nExample:\n  eventsync venues update 1 --capacity 600')
    .action(async (id: string, options: VenueFields, command: Command) => {
      const context = cliContext(command);
      const venue = expectOk(await context.events.call('updateVenue', { path: { id: parseInteger('id', 1)(id) }, body: venueBody(options) })).body;
      if (context.options.json) printJson(venue);
      else printVenue(venue);
    });
  venues
    .command('delete <id>')
    .description('delete a venue (refused while events link to it)')
    .addHelpText('after', '\nExample:\n  eventsync venues delete 1')
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      const venueId = parseInteger('id', 1)(id);
      expectOk(await context.events.call('deleteVenue', { path: { id: venueId } }));
      if (context.options.json) printJson({ deleted: venueId });
      else process.stdout.write(`deleted venue ${venueId}\n`);
    });
  return venues;
}
