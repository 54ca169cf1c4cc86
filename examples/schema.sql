-- The example database of the quick start: the tables of the scenario in docs/design.md.
CREATE TABLE users (
  id        int PRIMARY KEY,
  tenant_id text NOT NULL,
  email     text NOT NULL,
  role      text NOT NULL
);
CREATE TABLE records (
  id         serial PRIMARY KEY,
  tenant_id  text NOT NULL,
  created_by int  NOT NULL,
  data       text NOT NULL
);
-- Who besides its creator may see a record (a membership table).
CREATE TABLE record_members (
  tenant_id text NOT NULL,
  record_id int  NOT NULL REFERENCES records (id),
  user_id   int  NOT NULL,
  PRIMARY KEY (record_id, user_id)
);
CREATE TABLE countries (
  code text PRIMARY KEY,
  name text NOT NULL
);

INSERT INTO users VALUES
  (1, 'acme',   'alice@acme.test',   'admin'),
  (2, 'acme',   'bob@acme.test',     'member'),
  (3, 'globex', 'carol@globex.test', 'admin'),
  (4, 'globex', 'dave@globex.test',  'member');
INSERT INTO records (tenant_id, created_by, data) VALUES
  ('acme', 1, 'acme: alice''s first record'),
  ('acme', 1, 'acme: alice''s second record'),
  ('acme', 2, 'acme: bob''s record'),
  ('globex', 3, 'globex: carol''s record'),
  ('globex', 4, 'globex: dave''s record');
-- bob is a member of alice's second record; carol of dave's record.
INSERT INTO record_members VALUES ('acme', 2, 2), ('globex', 5, 3);
INSERT INTO countries VALUES ('fr', 'France'), ('jp', 'Japan'), ('br', 'Brazil');
