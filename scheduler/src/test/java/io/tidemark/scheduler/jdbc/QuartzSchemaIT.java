package io.tidemark.scheduler.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.scheduler.QuartzJdbc;
import io.tidemark.scheduler.QuartzSchema;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The engine creates and upgrades the scheduler's tables itself, on a real PostgreSQL. */
class QuartzSchemaIT {

    static PostgresCluster postgres;

    @BeforeAll
    static void start() {
        postgres = PostgresCluster.start("quartz");
    }

    @AfterAll
    static void stop() {
        if (postgres != null) {
            postgres.close();
        }
    }

    private static QuartzJdbc as(String database) {
        return QuartzJdbc.of(
                postgres.jdbcUrl(database), PostgresCluster.PASSWORD_USER, PostgresCluster.PASSWORD, "cluster");
    }

    @Test
    void anEmptyDatabaseGetsTheTablesAndALaterStartKeepsWhatTheyHold() throws Exception {
        postgres.createDatabase("fresh");
        QuartzJdbc jdbc = as("fresh");

        assertThat(QuartzSchema.ensure(jdbc)).isZero();
        try (Connection c = DriverManager.getConnection(jdbc.jdbcUrl(), jdbc.user(), jdbc.password());
                Statement s = c.createStatement()) {
            s.execute("insert into qrtz_locks (sched_name, lock_name) values ('cluster', 'TRIGGER_ACCESS')");
        }
        assertThat(QuartzSchema.ensure(jdbc)).isEqualTo(QuartzSchema.VERSION);
        try (Connection c = DriverManager.getConnection(jdbc.jdbcUrl(), jdbc.user(), jdbc.password());
                Statement s = c.createStatement();
                ResultSet r = s.executeQuery("select count(*) from qrtz_locks")) {
            r.next();
            assertThat(r.getInt(1))
                    .as("rows of the scheduler survive a restart")
                    .isEqualTo(1);
        }
    }

    @Test
    void schedulersStartingTogetherCreateTheTablesOnce() throws Exception {
        postgres.createDatabase("race");
        QuartzJdbc jdbc = as("race");
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Integer>> starts = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                starts.add(pool.submit((Callable<Integer>) () -> QuartzSchema.ensure(jdbc)));
            }
            List<Integer> before = new ArrayList<>();
            for (Future<Integer> f : starts) {
                before.add(f.get());
            }
            assertThat(before).containsExactlyInAnyOrder(0, 1, 1, 1);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aWrongPasswordIsRefusedByNameWithoutShowingThePassword() {
        QuartzJdbc wrong = QuartzJdbc.of(
                postgres.jdbcUrl("quartz"), PostgresCluster.PASSWORD_USER, "not-the-password-8", "cluster");
        assertThatThrownBy(() -> QuartzSchema.ensure(wrong))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("PostgreSQL at " + postgres.jdbcUrl("quartz") + " refused user tidemark")
                .hasMessageNotContaining("not-the-password-8");
    }

    @Test
    void aMissingDatabaseSaysHowToCreateIt() {
        assertThatThrownBy(() -> QuartzSchema.ensure(as("nosuchdb")))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("the database does not exist")
                .hasMessageContaining("createdb");
    }

    @Test
    void aServerThatDoesNotAnswerIsRetriable() throws Exception {
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        QuartzJdbc nowhere = QuartzJdbc.of("jdbc:postgresql://127.0.0.1:" + closed + "/quartz", "u", "p", "c");
        assertThatThrownBy(() -> QuartzSchema.ensure(nowhere))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("127.0.0.1:" + closed)
                .hasMessageContaining("does not answer");
    }

    @Test
    void aSchemaNewerThanThisEngineIsRefused() throws Exception {
        postgres.createDatabase("newer");
        QuartzJdbc jdbc = as("newer");
        QuartzSchema.ensure(jdbc);
        try (Connection c = DriverManager.getConnection(jdbc.jdbcUrl(), jdbc.user(), jdbc.password());
                Statement s = c.createStatement()) {
            s.execute("update tidemark_schema set version = 99 where component = 'scheduler'");
        }
        assertThatThrownBy(() -> QuartzSchema.ensure(jdbc))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("schema version 99, newer than this engine's " + QuartzSchema.VERSION);
    }
}
