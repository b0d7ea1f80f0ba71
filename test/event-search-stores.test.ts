/**
 * Free-text search means the same on both stores (DESIGN.md, Store and scale-out): SQLite's FTS5 and
 * PostgreSQL's tsvector index find the same events for the same q, on a corpus with accents,
 * punctuation, quotes and other scripts.
 */
import t from 'tap';
import { startEventApp, type TestEventApp } from './helpers/event-app.js';
import { postEvent, type ApiEvent } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

const CORPUS = [
  { name: 'Café Crème Night', description: 'Espresso and chansons', venue: 'Le Petit Théâtre' },
  { name: 'Naïve Melodies', description: 'A naïve, joyful set', venue: 'Zürich Halle' },
  { name: 'São Paulo Samba', description: 'Música ao vivo', venue: 'Praça Central' },
  { name: 'Dvořák Symphony No. 9', description: 'From the New World', venue: 'Rudolfinum' },
  { name: 'Crème brûlée workshop', description: 'Hands-on pastry (beginners)', venue: 'École de Cuisine' },
  { name: 'Node.js Meetup', description: 'Talks on node.js, deno & bun', venue: 'Hub/Space 3.5' },
  { name: 'AC/DC Tribute', description: '"Highway to Hell" — live', venue: 'Rock-n-Roll Club' },
  { name: "Rock'n'Roll Revival", description: "Elvis' greatest hits", venue: 'Jukebox Bar' },
  { name: 'C++ & Rust Conference', description: 'Systems programming, 2027 edition', venue: 'Convention Center' },
  { name: 'Øresund Jazz', description: 'Nordic jazz by the bridge', venue: 'Malmö Live' },
  { name: 'Łódź Film Days', description: 'Straße und Stadt', venue: 'Kino Muza' },
  { name: 'Αθήνα Festival', description: 'Ancient theatre, modern music', venue: 'Ηρώδειο' },
  { name: 'Москва Ballet', description: 'Лебединое озеро', venue: 'Большой театр' },
  { name: '東京 Jazz Weekend', description: 'Tokyo big bands', venue: 'Blue Note 東京' },
  { name: 'e-mail marketing 101', description: 'user@example.com is not a word', venue: 'Room_42' },
  { name: 'Conference on Conferences', description: 'Meta-talks about conferencing', venue: 'Convention Center' },
];

const QUERIES = [
  // words and prefixes, any case
  'conference', 'conf', 'CONFER', 'jazz', 'ja', 'z', 'meetup', '101', '2027', '3',
  // several words: all must match
  'jazz tokyo', 'jazz nordic bridge', 'convention conf', 'jazz ballet',
  // accents, in the text or in q
  'cafe', 'café', 'CAFÉ', 'creme', 'crème brûlée', 'brul', 'theatre', 'théâtre', 'naive', 'naïve', 'dvorak', 'zurich', 'sao paulo', 'musica', 'ecole', 'praca',
  // letters that do not decompose, and other scripts
  'øresund', 'malmo', 'łódź', 'straße', 'αθήνα', 'αθηνα', 'москва', 'лебед', '東京',
  // punctuation and quotes are not words
  'node.js', 'node', 'js', 'ac/dc', 'dc', '3.5', '"highway to hell"', "rock'n'roll", 'rock-n-roll', 'roll', 'c++', 'c++ rust', 'user@example.com', 'room_42', 'e-mail',
  '"conference', 'conf*', '(jazz)', 'jazz OR ballet', 'NEAR(jazz tokyo)', 'venue:jazz', "jazz' --", '-jazz',
  // no words at all
  '!!!', '"', '*', '--', '.', '_',
];

async function searchIds(app: TestEventApp, q: string): Promise<number[]> {
  const response = await app.inject({ method: 'GET', url: `/events?q=${encodeURIComponent(q)}&limit=1000&sort=name` });
  if (response.statusCode !== 200) throw new Error(`q=${q} answered ${response.statusCode}: ${response.body}`);
  return response.json<ApiEvent[]>().map((event) => event.id).sort((a, b) => a - b);
}

const stores = await testStores();
const apps = new Map<string, TestEventApp>();
const seeded = new Map<string, ApiEvent[]>();

t.before(async () => {
  for (const store of stores) {
    const app = await startEventApp(t, {}, { store });
    const events: ApiEvent[] = [];
    for (const body of CORPUS) events.push(await postEvent(app, body));
    apps.set(store, app);
    seeded.set(store, events);
  }
});

t.test('the same corpus gets the same ids on both stores', async (t) => {
  const [first, ...others] = [...seeded.values()].map((events) => events.map((e) => e.id));
  for (const ids of others) t.same(ids, first);
});

t.test('accents are ignored on Latin letters that carry them: cafe finds Café, dvorak finds Dvořák, naive finds naïve', async (t) => {
  for (const [store, app] of apps) {
    const ids = seeded.get(store)?.map((e) => e.id) ?? [];
    t.same(await searchIds(app, 'cafe'), [ids[0]], `${store}: cafe`);
    t.same(await searchIds(app, 'dvorak'), [ids[3]], `${store}: dvorak`);
    t.same(await searchIds(app, 'naive'), [ids[1]], `${store}: naive`);
    t.same(await searchIds(app, 'creme brul'), [ids[4]], `${store}: creme brul`);
    t.same(await searchIds(app, 'node.js'), [ids[5]], `${store}: node.js is the words node and js`);
    t.same(await searchIds(app, 'dc'), [ids[6]], `${store}: dc is a word of AC/DC`);
    t.same(await searchIds(app, '!!!'), [], `${store}: q without words finds nothing`);
  }
});

t.test(`every query finds the same events on ${stores.join(' and ')}`, async (t) => {
  for (const q of QUERIES) {
    const found = new Map<string, number[]>();
    for (const [store, app] of apps) found.set(store, await searchIds(app, q));
    const [first, ...others] = [...found.values()];
    for (const [store, ids] of [...found].slice(1)) t.same(ids, first, `q=${JSON.stringify(q)}: ${store} finds ${JSON.stringify(ids)}, sqlite ${JSON.stringify(first)}`);
    if (others.length === 0) t.ok(Array.isArray(first), `q=${JSON.stringify(q)} answers`);
  }
});
