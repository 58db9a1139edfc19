package io.tidemark.scheduler;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The clustered scheduler's tables in PostgreSQL, created and upgraded by the engine at start: an
 * operator gives a database and a user, not a DDL script. Schema versions are recorded in {@code
 * tidemark_schema}; each start applies the steps a database lacks, in order, under a PostgreSQL
 * advisory lock so schedulers starting together do it once. Quartz's own DDL starts with {@code DROP
 * TABLE}: it runs only on a database that has no Quartz tables yet, never over existing ones.
 */
public final class QuartzSchema {

    private static final Logger log = LoggerFactory.getLogger(QuartzSchema.class);
    private static final String QUARTZ_DDL = "org/quartz/impl/jdbcjobstore/tables_postgres.sql";
    /** Keys the advisory lock of schema changes (an arbitrary constant: "tidemark" in ASCII). */
    private static final long LOCK_KEY = 0x746964656d61726bL;
    /** The schema this version of the engine needs. */
    public static final int VERSION = 1;

    private QuartzSchema() {}

    /**
     * Brings the database of {@code jdbc} to {@link #VERSION}: connects, creates the Quartz tables if
     * there are none, records the version. Idempotent; safe when several schedulers start at once.
     *
     * @return the version the database had before (0 for an empty one)
     * @throws PermanentException when PostgreSQL refuses the user or the database does not exist, or
     *     the database holds a newer schema than this engine knows (an older engine after an upgrade)
     * @throws RetriableException when PostgreSQL does not answer
     */
    public static int ensure(QuartzJdbc jdbc) {
        try (Connection c = DriverManager.getConnection(jdbc.jdbcUrl(), jdbc.user(), jdbc.password())) {
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.execute("select pg_advisory_xact_lock(" + LOCK_KEY + ")");
                s.execute("create table if not exists tidemark_schema (component varchar(40) primary key,"
                        + " version integer not null, updated_at timestamptz not null default now())");
            }
            int before = version(c);
            if (before > VERSION) {
                throw new PermanentException("the scheduler database " + jdbc.jdbcUrl() + " has schema version "
                        + before + ", newer than this engine's " + VERSION
                        + ": an upgraded engine wrote it; run schedulers of that version (docs/deploy.md, upgrades)");
            }
            if (before < 1) {
                if (hasQuartzTables(c)) {
                    log.info("scheduler database {}: Quartz tables found, recording schema version 1", jdbc.jdbcUrl());
                } else {
                    try (Statement s = c.createStatement()) {
                        s.execute(quartzDdl());
                    }
                    log.info("scheduler database {}: created the Quartz tables (schema version 1)", jdbc.jdbcUrl());
                }
            }
            // later versions: one `if (before < N)` step each, in order, in this transaction
            if (before < VERSION) {
                try (PreparedStatement p = c.prepareStatement("insert into tidemark_schema (component, version)"
                        + " values ('scheduler', ?) on conflict (component) do update set version = excluded.version,"
                        + " updated_at = now()")) {
                    p.setInt(1, VERSION);
                    p.executeUpdate();
                }
            }
            c.commit();
            return before;
        } catch (SQLException e) {
            throw translate(jdbc, e);
        }
    }

    private static int version(Connection c) throws SQLException {
        try (Statement s = c.createStatement();
                ResultSet r = s.executeQuery("select version from tidemark_schema where component = 'scheduler'")) {
            return r.next() ? r.getInt(1) : 0;
        }
    }

    private static boolean hasQuartzTables(Connection c) throws SQLException {
        DatabaseMetaData meta = c.getMetaData();
        for (String name : List.of("qrtz_job_details", "QRTZ_JOB_DETAILS")) {
            try (ResultSet r = meta.getTables(null, null, name, new String[] {"TABLE"})) {
                if (r.next()) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * What to tell the operator about a failed connection or statement: the server's SQLSTATE decides
     * whether it is the settings (permanent) or the server's availability (retriable).
     */
    static RuntimeException translate(QuartzJdbc jdbc, SQLException e) {
        String state = e.getSQLState() == null ? "" : e.getSQLState();
        String where = "PostgreSQL at " + jdbc.jdbcUrl();
        if (state.equals("28P01") || state.equals("28000")) {
            return new PermanentException(
                    where + " refused user " + jdbc.user() + ": " + e.getMessage()
                            + "; check scheduler.jdbc.user and the password file or variable",
                    e);
        }
        if (state.equals("3D000")) {
            return new PermanentException(
                    where + ": the database does not exist (" + e.getMessage() + "); create it, e.g. `createdb -O "
                            + jdbc.user() + " <name>`",
                    e);
        }
        if (state.startsWith("08") || state.equals("57P03")) {
            return new RetriableException(
                    where + " does not answer: " + e.getMessage()
                            + "; check that PostgreSQL runs and scheduler.jdbc.url is right",
                    e);
        }
        if (state.equals("42501")) {
            return new PermanentException(
                    where + ": user " + jdbc.user() + " may not create or use the scheduler's" + " tables ("
                            + e.getMessage() + "); grant it CREATE on the database's schema",
                    e);
        }
        return new PermanentException(
                where + ": " + e.getMessage() + " (SQLSTATE " + state.toLowerCase(Locale.ROOT) + ")", e);
    }

    /** Quartz's DDL from its jar, without its bare trailing {@code COMMIT} (this runs in a transaction). */
    private static String quartzDdl() {
        try (InputStream in = QuartzSchema.class.getClassLoader().getResourceAsStream(QUARTZ_DDL)) {
            if (in == null) {
                throw new IllegalStateException(QUARTZ_DDL + " is not on the class path (the quartz jar)");
            }
            String sql = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            return sql.replaceAll("(?im)^\\s*commit\\s*;\\s*$", "");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
