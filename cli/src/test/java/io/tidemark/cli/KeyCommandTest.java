package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.read.ListAppender;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.Passphrase;
import io.tidemark.repository.PassphraseSource;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * {@code tidemark key init / change-passphrase} and the passphrase options of the other commands,
 * end to end through {@link Main}: exit codes, messages, and that no passphrase or wrapped key ever
 * reaches stdout, stderr or a log line (every logger captured at TRACE).
 */
class KeyCommandTest {

    private static final String OLD = "old passphrase: tidemark-unit-7f3a";
    private static final String NEW = "new passphrase: tidemark-unit-9c2e";

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
    private Logger root;
    private Level rootLevel;
    private Path config;
    private Path oldFile;
    private Path newFile;

    @BeforeEach
    void setUp() throws Exception {
        root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        rootLevel = root.getLevel();
        root.setLevel(Level.TRACE);
        logs.start();
        root.addAppender(logs);
        KeyCommand.env = Map.of();
        Files.createDirectories(dir.resolve("nas"));
        oldFile = Files.writeString(dir.resolve("old.pass"), OLD + "\n");
        newFile = Files.writeString(dir.resolve("new.pass"), NEW);
        config = Files.writeString(
                dir.resolve("tidemark.yaml"),
                """
                data: %s
                targets:
                  nas:
                    type: file
                    path: %s
                encryption:
                  passphraseFile: %s
                  kdfIterations: 1000
                """
                        .formatted(dir.resolve("data"), dir.resolve("nas"), oldFile));
    }

    @AfterEach
    void tearDown() {
        root.detachAppender(logs);
        root.setLevel(rootLevel);
        KeyCommand.env = System.getenv();
    }

    @Test
    void initChangeAndUseThePassphraseWithoutEverPrintingIt() throws Exception {
        assertThat(Main.execute("key", "init", "--config", config.toString())).isZero();
        assertThat(std.out()).contains("created encrypted repository");
        Path repoDir = dir.resolve("data/repo");
        assertThat(Files.readString(repoDir.resolve("config"))).contains("AES-256-GCM");
        // a second init refuses
        assertThat(Main.execute("key", "init", "--config", config.toString())).isEqualTo(2);
        assertThat(std.err()).contains("there is a repository at");

        // back up one point, then replicate it to a directory with the CLI
        byte[] disk = new byte[512 * 1024];
        new Random(1).nextBytes(disk);
        Manifest m;
        try (FileObjectTarget t = new FileObjectTarget(repoDir)) {
            Repository repo = Repository.open(t, PassphraseSource.of(Passphrase.of(OLD, "test")));
            m = backup(repo, disk);
        }
        Path replica = Files.createDirectories(dir.resolve("replica"));
        std.reset();
        assertThat(Main.execute(
                        "replicate",
                        "--from",
                        repoDir.toString(),
                        "--to",
                        replica.toString(),
                        "--passphrase-file",
                        oldFile.toString()))
                .isZero();
        assertThat(replica.resolve(ObjectKeys.KEYS)).isDirectory();

        // without a passphrase, with a wrong one: exit 2, saying what to do
        std.reset();
        assertThat(Main.execute("list", "--from", replica.toString())).isEqualTo(2);
        assertThat(std.err()).contains("is encrypted").contains("TIDEMARK_PASSPHRASE");
        std.reset();
        assertThat(Main.execute("list", "--from", replica.toString(), "--passphrase-file", newFile.toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("wrong passphrase for repository file://" + replica);

        // change the primary's passphrase: the old one stops working there, the new one restores
        std.reset();
        assertThat(Main.execute(
                        "key",
                        "change-passphrase",
                        "--config",
                        config.toString(),
                        "--new-passphrase-file",
                        newFile.toString(),
                        "--json"))
                .isZero();
        assertThat(std.out()).contains("\"keyObject\" : \"keys/");
        std.reset();
        assertThat(Main.execute("list", "--from", repoDir.toString(), "--passphrase-file", oldFile.toString()))
                .isEqualTo(2);
        Path out = dir.resolve("restored");
        Files.createDirectories(out);
        assertThat(Main.execute(
                        "restore",
                        "--from",
                        repoDir.toString(),
                        "--vm",
                        "vm1",
                        "--out",
                        out.toString(),
                        "--passphrase-file",
                        newFile.toString(),
                        "--json"))
                .isZero();
        assertThat(Files.readAllBytes(out.resolve("sda.raw"))).isEqualTo(disk);

        // the target "nas" is empty: changing its passphrase says there is no repository
        std.reset();
        assertThat(Main.execute(
                        "key",
                        "change-passphrase",
                        "--config",
                        config.toString(),
                        "--target",
                        "nope",
                        "--new-passphrase-file",
                        newFile.toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("target 'nope' is not in the engine config");

        assertNoSecretAnywhere(repoDir, m);
    }

    @Test
    void statusReadsAnEncryptedPrimaryWithThePassphraseFromTheConfig() throws Exception {
        assertThat(Main.execute("key", "init", "--config", config.toString())).isZero();
        Path policies = Files.createDirectories(dir.resolve("policies"));
        std.reset();
        int code = Main.execute("status", "--config", config.toString(), "--policies", policies.toString());
        assertThat(code).as(std.err()).isZero();
        std.reset();
        Path noPass = Files.writeString(dir.resolve("nopass.yaml"), "data: " + dir.resolve("data") + "\n");
        assertThat(Main.execute("status", "--config", noPass.toString(), "--policies", policies.toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("is encrypted");
        assertNoSecretAnywhere(dir.resolve("data/repo"), null);
    }

    private void assertNoSecretAnywhere(Path repoDir, Manifest m) throws Exception {
        StringBuilder everything = new StringBuilder(std.out()).append(std.err());
        for (ILoggingEvent e : logs.list) {
            everything.append(e.getFormattedMessage()).append('\n');
            if (e.getThrowableProxy() != null) {
                everything.append(ThrowableProxyUtil.asString(e.getThrowableProxy()));
            }
        }
        String text = everything.toString();
        assertThat(text).doesNotContain(OLD).doesNotContain(NEW);
        for (Path key : Files.list(repoDir.resolve(ObjectKeys.KEYS)).toList()) {
            String wrapped = Files.readString(key, StandardCharsets.UTF_8);
            String b64 = wrapped.replaceAll("(?s).*\"wrapped\" : \"([^\"]+)\".*", "$1");
            assertThat(text).doesNotContain(b64);
        }
        if (m != null) {
            assertThat(Files.readAllBytes(repoDir.resolve(ObjectKeys.manifest("vm1", m.id()))))
                    .asString(StandardCharsets.ISO_8859_1)
                    .doesNotContain("vm1")
                    .doesNotContain(OLD);
        }
    }

    private static Manifest backup(Repository repo, byte[] disk) {
        int chunk = repo.config().chunkSize();
        var index = repo.newIndex(disk.length, Optional.empty());
        for (int c = 0; c * chunk < disk.length; c++) {
            byte[] data = java.util.Arrays.copyOfRange(disk, c * chunk, (c + 1) * chunk);
            index.set(c, repo.putChunk(data, chunk).digest());
        }
        Digest root = index.finish();
        Instant t = Instant.parse("2026-11-24T00:00:00Z");
        Manifest m = new Manifest(
                1,
                "20261124T000000.000Z-abcdef",
                "vm1",
                "hv1",
                "job-1",
                t,
                t,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.empty(),
                List.of(new DiskEntry("sda", disk.length, chunk, root.hex(), "cp", Optional.empty(), 0, 0)));
        repo.commit(m);
        return m;
    }
}
