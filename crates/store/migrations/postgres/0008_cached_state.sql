-- What servers cache from the store (the trust root in force, roles defined through the API),
-- versioned: a trigger raises the version in the transaction of each change and notifies
-- `airlock_cached_state`, which PostgreSQL delivers to every listening server when (and only
-- if) that transaction commits. A server that reads a version it has not loaded reloads.

CREATE TABLE cached_state (
    id      smallint NOT NULL PRIMARY KEY CHECK (id = 1),
    version bigint   NOT NULL
);

INSERT INTO cached_state (id, version) VALUES (1, 1);

CREATE FUNCTION cached_state_raise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cached_state SET version = version + 1 WHERE id = 1;
    PERFORM pg_notify('airlock_cached_state', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER cached_state_on_root AFTER INSERT ON trust_roots
    FOR EACH ROW EXECUTE FUNCTION cached_state_raise();
CREATE TRIGGER cached_state_on_role AFTER INSERT ON roles
    FOR EACH ROW EXECUTE FUNCTION cached_state_raise();
