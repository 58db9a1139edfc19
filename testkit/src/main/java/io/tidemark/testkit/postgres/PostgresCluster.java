package io.tidemark.testkit.postgres;

import io.tidemark.core.files.FileTrees;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.testkit.fixture.PostgresFixture;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.UserPrincipal;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A throwaway PostgreSQL cluster for tests, the process-backed {@link PostgresFixture}: {@code
 * initdb} in a temp dir, a server on a free 127.0.0.1 port with its unix socket in that dir (fsync
 * off), one empty database (load a schema with {@link #execute}). User {@code postgres}, trust
 * authentication, empty password; user {@link #PASSWORD_USER} logs in over TCP with {@link
 * #PASSWORD} only (scram-sha-256), for tests of refused credentials. As root the server runs as user {@code postgres} through {@code
 * runuser}. {@link #close} stops the server and deletes the dir; a failed {@link #start} cleans up
 * the same way.
 */
public final class PostgresCluster implements PostgresFixture {
    /** A user that must give {@link #PASSWORD} (scram-sha-256 over TCP). */
    public static final String PASSWORD_USER = "tidemark";
    /** The password of {@link #PASSWORD_USER}. */
    public static final String PASSWORD = "pg-pw-for-tests-31";

    private static final Logger log = LoggerFactory.getLogger(PostgresCluster.class);

    private final Path dir;
    private final Path bin;
    private final int port;
    private final String database;
    private final Thread onExit = new Thread(this::close, "postgres-cluster-stop");
    private volatile boolean running;

    private PostgresCluster(Path dir, Path bin, int port, String database) {
        this.dir = dir;
        this.bin = bin;
        this.port = port;
        this.database = database;
    }

    /**
     * Starts a cluster with the empty database {@code database}.
     *
     * @throws IllegalStateException if the PostgreSQL binaries are missing (deploy/install-deps.sh)
     *     or the server does not come up
     */
    public static PostgresCluster start(String database) {
        Path bin = findBin();
        Path dir;
        try {
            dir = Files.createTempDirectory("tidemark-pg");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        PostgresCluster cluster = new PostgresCluster(dir, bin, freePort(), database);
        Runtime.getRuntime().addShutdownHook(cluster.onExit); // a JVM that exits without close
        try {
            cluster.boot();
            return cluster;
        } catch (RuntimeException e) {
            cluster.close();
            throw e;
        }
    }

    @Override
    public String jdbcUrl() {
        return jdbcUrl(database);
    }

    /** The server's port on 127.0.0.1. */
    public int port() {
        return port;
    }

    @Override
    public String password() {
        return "";
    }

    @Override
    public String backend() {
        return "process: PostgreSQL from " + bin + " on 127.0.0.1:" + port;
    }

    /** Stops the server (immediate mode) and deletes its directory. Idempotent. */
    @Override
    public synchronized void close() {
        if (Thread.currentThread() != onExit) {
            try {
                Runtime.getRuntime().removeShutdownHook(onExit);
            } catch (IllegalStateException | IllegalArgumentException e) {
                // the JVM is exiting (the hook runs or ran) or the hook is gone already
            }
        }
        if (running) {
            running = false;
            try {
                run(List.of(
                        bin.resolve("pg_ctl").toString(),
                        "-D",
                        dir.resolve("data").toString(),
                        "-m",
                        "immediate",
                        "-w",
                        "stop"));
            } catch (IllegalStateException e) {
                log.warn("could not stop PostgreSQL in {}", dir, e);
            }
        }
        deleteTree(dir);
    }

    /**
     * Stops the server in immediate mode (as a crash would: no checkpoint, clients cut off) and
     * starts it again on its data and port, as an operator's database restarts under its clients.
     */
    public synchronized void restart() {
        if (!running) {
            throw new IllegalStateException("PostgreSQL in " + dir + " is not running");
        }
        run(List.of(
                bin.resolve("pg_ctl").toString(),
                "-D",
                dir.resolve("data").toString(),
                "-m",
                "immediate",
                "-w",
                "stop"));
        startServer();
        log.info("PostgreSQL on 127.0.0.1:{} restarted", port);
    }

    private void startServer() {
        run(List.of(
                bin.resolve("pg_ctl").toString(),
                "-D",
                dir.resolve("data").toString(),
                "-l",
                dir.resolve("postgres.log").toString(),
                "-w",
                "-t",
                "30",
                "-o",
                "-p " + port + " -k " + dir.resolve("sock") + " -c listen_addresses=127.0.0.1 -c fsync=off"
                        + " -c synchronous_commit=off -c full_page_writes=off",
                "start"));
    }

    private void boot() {
        Path sock = dir.resolve("sock");
        try {
            Files.createDirectories(sock);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (isRoot()) {
            chownTree(dir, USER);
        }
        run(List.of(
                bin.resolve("initdb").toString(),
                "-D",
                dir.resolve("data").toString(),
                "-U",
                USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions"));
        requirePasswordOf(PASSWORD_USER);
        startServer();
        running = true;
        try (Connection c = DriverManager.getConnection(jdbcUrl("postgres"), USER, "");
                Statement s = c.createStatement()) {
            s.execute("create database " + database);
        } catch (SQLException e) {
            throw new IllegalStateException("cannot create database " + database, e);
        }
        try (Connection c = DriverManager.getConnection(jdbcUrl("postgres"), USER, "");
                Statement s = c.createStatement()) {
            s.execute("create role " + PASSWORD_USER + " login password '" + PASSWORD + "'");
            s.execute("grant all on database " + database + " to " + PASSWORD_USER);
        } catch (SQLException e) {
            throw new IllegalStateException("cannot create role " + PASSWORD_USER, e);
        }
        log.info("PostgreSQL on 127.0.0.1:{} in {}, database {}", port, dir, database);
    }

    /** Makes {@code user} log in over TCP with its password only: a line before initdb's trust lines. */
    private void requirePasswordOf(String user) {
        Path hba = dir.resolve("data").resolve("pg_hba.conf");
        try {
            String rules = Files.readString(hba);
            Files.writeString(hba, "host all " + user + " 127.0.0.1/32 scram-sha-256\n" + rules);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Creates another empty database (no tables), owned by {@link #PASSWORD_USER}. */
    public void createDatabase(String name) {
        try (Connection c = DriverManager.getConnection(jdbcUrl("postgres"), USER, "");
                Statement s = c.createStatement()) {
            s.execute("create database " + name + " owner " + PASSWORD_USER);
        } catch (SQLException e) {
            throw new IllegalStateException("cannot create database " + name, e);
        }
    }

    /** The JDBC URL of database {@code name} of this cluster. */
    public String jdbcUrl(String name) {
        return "jdbc:postgresql://127.0.0.1:" + port + "/" + name;
    }

    private void run(List<String> command) {
        List<String> full = new ArrayList<>();
        if (isRoot()) {
            full.addAll(List.of("runuser", "-u", USER, "--"));
        }
        full.addAll(command);
        // pg_ctl leaves the server holding its stdio: output to a file, not through pipes
        ExternalCommand.of(full)
                .timeout(Duration.ofSeconds(60))
                .outputFile(dir.resolve("command.log"))
                .ifMissing("install PostgreSQL (deploy/install-deps.sh) or set PG_BIN")
                .run();
    }

    private static Path findBin() {
        String configured = System.getenv("PG_BIN");
        if (configured != null) {
            return Path.of(configured);
        }
        try (Stream<Path> versions = Files.list(Path.of("/usr/lib/postgresql"))) {
            return versions.map(v -> v.resolve("bin"))
                    .filter(b -> Files.isExecutable(b.resolve("pg_ctl")))
                    .max(Comparator.comparing(
                            b -> Integer.parseInt(b.getParent().getFileName().toString())))
                    .orElseThrow(PostgresCluster::noBinaries);
        } catch (IOException | NumberFormatException e) {
            throw noBinaries();
        }
    }

    private static IllegalStateException noBinaries() {
        return new IllegalStateException(
                "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (run deploy/install-deps.sh or set PG_BIN)");
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    private static void chownTree(Path root, String owner) {
        try {
            UserPrincipalLookupService users = root.getFileSystem().getUserPrincipalLookupService();
            UserPrincipal user = users.lookupPrincipalByName(owner);
            GroupPrincipal group = users.lookupPrincipalByGroupName(owner);
            try (Stream<Path> paths = Files.walk(root)) {
                for (Path p : paths.toList()) {
                    PosixFileAttributeView view = Files.getFileAttributeView(p, PosixFileAttributeView.class);
                    view.setOwner(user);
                    view.setGroup(group);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot chown " + root + " to " + owner, e);
        }
    }

    private static void deleteTree(Path root) {
        try {
            FileTrees.delete(root);
        } catch (IOException e) {
            log.warn("could not delete {}", root, e);
        }
    }
}
