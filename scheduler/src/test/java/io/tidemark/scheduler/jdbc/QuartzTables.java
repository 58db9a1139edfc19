package io.tidemark.scheduler.jdbc;

import io.tidemark.scheduler.QuartzJdbc;
import io.tidemark.scheduler.QuartzSchema;
import io.tidemark.testkit.fixture.PostgresFixture;

/** Creates the scheduler's tables in a fixture's database the way the engine does ({@link QuartzSchema}). */
final class QuartzTables {

    private QuartzTables() {}

    /** Returns {@code postgres} with the Quartz tables created in its database. */
    static PostgresFixture loadInto(PostgresFixture postgres) {
        try {
            QuartzSchema.ensure(QuartzJdbc.of(postgres.jdbcUrl(), postgres.user(), postgres.password(), "setup"));
            return postgres;
        } catch (RuntimeException e) {
            postgres.close();
            throw e;
        }
    }
}
