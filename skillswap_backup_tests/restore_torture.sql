-- A schema that exercises every restore edge case of issue 3 (item 3); loaded into a scratch database.
CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE EXTENSION pg_buffercache;  -- untrusted: only a superuser (or the provider) can create it
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE SCHEMA "Other Schema";
CREATE SCHEMA drizzle;

-- No primary key, duplicate rows, mixed-case and reserved-word names, a non-public schema.
CREATE TABLE "Other Schema"."Mixed Case" ("select" int, "Order" text, "user" mood);
INSERT INTO "Other Schema"."Mixed Case" VALUES (1, 'x', 'ok'), (1, 'x', 'ok'), (NULL, NULL, NULL), (NULL, NULL, NULL);

CREATE TABLE drizzle.__drizzle_migrations (id serial PRIMARY KEY, hash text NOT NULL, created_at bigint);
INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('a1b2c3', 1700000000000), ('d4e5f6', 1700000100000);

CREATE TABLE torture (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    i2 smallint, i4 int, i8 bigint,
    n numeric(40, 20), nu numeric, r real, d double precision,
    t text, vc varchar(10), ch char(5), ci citext, b bytea, bo boolean,
    da date, ti time, ttz timetz, ts timestamp, tstz timestamptz, ts3 timestamp(3), iv interval,
    u uuid, j json, jb jsonb, arr int[], arr2 text[][], narr numeric[], tsarr timestamptz[],
    m mood, marr mood[], p posint,
    ip inet, ci4 cidr, mac macaddr, rng int4range, tsr tstzrange, nr numrange,
    bits bit(3), vb varbit, tv tsvector, pt point, hs hstore,
    gen bigint GENERATED ALWAYS AS (i4::bigint * 2) STORED
);
INSERT INTO torture (i2, i4, i8, n, nu, r, d, t, vc, ch, ci, b, bo, da, ti, ttz, ts, tstz, ts3, iv, u, j, jb, arr, arr2, narr, tsarr,
                     m, marr, p, ip, ci4, mac, rng, tsr, nr, bits, vb, tv, pt, hs) VALUES
(-32768, 2147483647, -9223372036854775808, 12345678901234567890.12345678901234567890, 'NaN', 'NaN', '-Infinity',
 E'unicode \u2603 \U0001F600 "q" '' \\ back\ttab\nnl\r\ncrlf', '', 'ab', 'MiXeD', E'\\x00ff00', true,
 'infinity', '24:00:00', '12:00:00+05:30', '0044-03-15 12:00:00.123456 BC', '2024-02-29 23:59:59.999999+02', '2020-01-01 00:00:00.123',
 '1 year 2 mons -3 days 04:05:06.7', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b":1,"a":2,"a":3}', '{"b":1,"a":[1,2,{"z":null}]}',
 '{1,NULL,3}', '{{a,NULL},{"c d","e,f"}}', '{1.5,NaN,NULL}', '{"2024-01-01 00:00:00+00",infinity}',
 'happy', '{sad,NULL,happy}', 5, '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '[1,10)', '[2024-01-01,infinity)', '(1.5,2.5]',
 B'101', B'1', 'fat cats ate:1 rats', '(1.5,-2)', 'a=>1, "b c"=>NULL'),
(NULL, NULL, NULL, NULL, NULL, '-0', 'Infinity', NULL, NULL, NULL, NULL, '\x', false, '4713-01-01 BC', '00:00:00', '00:00:00-12',
 '-infinity', 'infinity', NULL, NULL, NULL, '[]', 'null', NULL, NULL, NULL, NULL, 'sad', NULL, NULL, NULL, NULL, NULL, 'empty',
 NULL, 'empty', NULL, B'', '', NULL, ''),
(1, 1, 1, 0.1, 1e-30, 3.4028235e38, 2.2250738585072014e-308, '', NULL, NULL, '', NULL, NULL, '2000-02-29', '13:14:15.000001', NULL,
 '12345-06-07 01:02:03.000004', '1999-12-31 23:59:59.999999-00', NULL, '-1 days +00:00:00.000001', NULL, '{}', '{}', '{}', '{}', '{}', '{}',
 NULL, '{}', NULL, '::1', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(NULL, NULL, NULL, -0.000000000000000001, -1e100, 1e-45, -0, E'\\.', 'x', 'abcde', NULL, E'\\x5c2e0a', NULL, '1970-01-01', '00:00:00', NULL,
 '1970-01-01 00:00:00', '0001-01-01 00:00:00+00', NULL, '0', NULL, '"str"', '"str"', NULL, '{{{1}}}', NULL, NULL, 'ok', NULL, 1,
 NULL, NULL, NULL, '(,)', '(,)', NULL, NULL, NULL, NULL, NULL, NULL),
(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- Self-referencing foreign key, serial id, comments, a view, an expression and a partial index.
CREATE TABLE people (id serial PRIMARY KEY, name text UNIQUE NOT NULL, boss_id int REFERENCES people (id) ON DELETE SET NULL);
COMMENT ON TABLE people IS 'people and their bosses';
COMMENT ON COLUMN people.name IS 'unique name';
CREATE INDEX people_lower_name ON people (lower(name)) WHERE boss_id IS NOT NULL;
INSERT INTO people (name, boss_id) VALUES ('root', NULL), ('second', 1), ('third', 2), ('fourth', 3);
UPDATE people SET boss_id = 4 WHERE id = 1;  -- a cycle of rows inside one table
CREATE VIEW people_with_boss AS SELECT p.name, b.name AS boss FROM people p LEFT JOIN people b ON b.id = p.boss_id;

-- Circular foreign keys between two tables.
CREATE TABLE "order" (id int PRIMARY KEY, "primary" int, note text);
CREATE TABLE line (id int PRIMARY KEY, order_id int NOT NULL REFERENCES "order" (id), qty posint);
ALTER TABLE "order" ADD CONSTRAINT order_primary_line FOREIGN KEY ("primary") REFERENCES line (id);
INSERT INTO "order" VALUES (1, NULL, 'first'), (2, NULL, 'second');
INSERT INTO line VALUES (10, 1, 3), (11, 1, 1), (20, 2, 7);
UPDATE "order" SET "primary" = 10 WHERE id = 1;
UPDATE "order" SET "primary" = 20 WHERE id = 2;

-- Composite primary key referencing two parents; a table in a non-public schema referencing public.
CREATE TABLE person_order (person_id int REFERENCES people (id) ON DELETE CASCADE, order_id int REFERENCES "order" (id),
                           role text CHECK (role IN ('buyer', 'seller')), PRIMARY KEY (person_id, order_id));
INSERT INTO person_order VALUES (1, 1, 'buyer'), (2, 1, 'seller'), (3, 2, 'buyer');
CREATE TABLE "Other Schema".audit (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, person_id int REFERENCES public.people (id),
                                   at timestamptz NOT NULL DEFAULT now(), what text);
INSERT INTO "Other Schema".audit (person_id, at, what) VALUES (1, '2024-05-01 10:00:00+00', 'login'), (2, '2024-05-02 11:30:00.5+00', 'logout');

-- A trigger, and a standalone sequence used by a default.
CREATE SEQUENCE ticket_seq START 1000;
CREATE FUNCTION stamp_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, 'stamped'); RETURN NEW; END $$;
CREATE TABLE ticket (no int PRIMARY KEY DEFAULT nextval('ticket_seq'), note text);
CREATE TRIGGER ticket_stamp BEFORE INSERT ON ticket FOR EACH ROW EXECUTE FUNCTION stamp_note();
INSERT INTO ticket (note) VALUES ('a'), (NULL), ('c');

-- More rows than one record batch, and an empty table.
CREATE TABLE many (id serial PRIMARY KEY, v int NOT NULL, t text);
INSERT INTO many (v, t) SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text) END FROM generate_series(1, 70000) g;
CREATE TABLE nothing (id bigserial PRIMARY KEY, x int);

-- Composite values (one whose fields are all NULL is a value, not NULL), and more text-form types.
CREATE TYPE addr AS (street text, no int, tags text[]);
CREATE TABLE more_types (id int PRIMARY KEY, a addr, aa addr[], mo money, x xml, mr int4multirange, m8 macaddr8, l pg_lsn,
                         c "char", ninf numeric, ivs interval[], js jsonb[], bpc char(3)[]);
INSERT INTO more_types VALUES
(1, ROW('Main St, "Apt 1"', 5, '{x,NULL}'), ARRAY[ROW('a', 1, NULL)::addr, ROW(NULL, NULL, NULL)::addr, NULL], '$1,234.56',
 '<a b="1">x &amp; y</a>', '{[1,3), [5,7)}', '08:00:2b:01:02:03:04:05', '16/B374D848', 'x', 'Infinity',
 '{"1 day", "-00:00:01"}', ARRAY['{"a": 1}'::jsonb, 'null'], '{ab,"c d"}'),
(2, ROW(NULL, NULL, NULL), '{}', '-$0.01', '<r/>', '{}', NULL, '0/0', E'\001', '-Infinity', '{}', '{}', '{}'),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL);
