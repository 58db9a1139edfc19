package io.tidemark.scheduler.jdbc;

import io.tidemark.testkit.fixture.PostgresFixture;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** Loads Quartz's PostgreSQL tables ({@code tables_postgres.sql} from the quartz jar) into a fixture's database. */
final class QuartzTables {

    private static final String QUARTZ_DDL = "org/quartz/impl/jdbcjobstore/tables_postgres.sql";

    private QuartzTables() {}

    /** Returns {@code postgres} with the Quartz tables created in its database. */
    static PostgresFixture loadInto(PostgresFixture postgres) {
        try {
            postgres.execute(ddl());
            return postgres;
        } catch (RuntimeException e) {
            postgres.close();
            throw e;
        }
    }

    /** The DDL from the quartz jar, without its bare trailing {@code COMMIT} (autocommit is on). */
    private static String ddl() {
        try (InputStream in = QuartzTables.class.getClassLoader().getResourceAsStream(QUARTZ_DDL)) {
            if (in == null) {
                throw new IllegalStateException(QUARTZ_DDL + " is not on the classpath");
            }
            String sql = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            return sql.replaceAll("(?im)^\\s*commit\\s*;\\s*$", "");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
