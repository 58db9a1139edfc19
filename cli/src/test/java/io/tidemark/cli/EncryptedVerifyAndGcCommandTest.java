package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.Passphrase;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * verify (plain, --deep, --repair-from), gc and prune --gc on an encrypted repository, with the
 * passphrase given each documented way: --passphrase-file, $TIDEMARK_PASSPHRASE, the engine
 * config's encryption.passphraseFile and encryption.passphraseEnv.
 */
class EncryptedVerifyAndGcCommandTest {

    private static final String SECRET = "verify passphrase: tidemark-unit-41c2";

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    private Path data;
    private Path replica;
    private Path passFile;
    private String chunk;

    /** The documented ways of giving the passphrase; each adds its flags to a command line. */
    enum Way {
        FLAG,
        DEFAULT_ENV,
        CONFIG_FILE,
        CONFIG_ENV;

        List<String> args(EncryptedVerifyAndGcCommandTest t) throws Exception {
            switch (this) {
                case FLAG:
                    PassphraseOptions.env = Map.of();
                    return List.of("--data", t.data.toString(), "--passphrase-file", t.passFile.toString());
                case DEFAULT_ENV:
                    PassphraseOptions.env = Map.of("TIDEMARK_PASSPHRASE", SECRET);
                    return List.of("--data", t.data.toString());
                case CONFIG_FILE:
                    PassphraseOptions.env = Map.of();
                    return List.of("--config", t.config("passphraseFile: " + t.passFile));
                default:
                    PassphraseOptions.env = Map.of("VAULT_PASSPHRASE", SECRET);
                    return List.of("--config", t.config("passphraseEnv: VAULT_PASSPHRASE"));
            }
        }
    }

    private String config(String encryption) throws Exception {
        return Files.writeString(
                        dir.resolve("engine.yaml"),
                        "data: " + data + "\nencryption:\n  " + encryption + "\n  kdfIterations: 1000\n")
                .toString();
    }

    @BeforeEach
    void encryptedRepositoryAndReplicaWithOnePoint() throws Exception {
        data = Files.createDirectories(dir.resolve("data"));
        replica = Files.createDirectories(dir.resolve("replica"));
        passFile = Files.writeString(dir.resolve("pass"), SECRET + "\n");
        try (FileObjectTarget t = new FileObjectTarget(Files.createDirectories(data.resolve("repo")));
                FileObjectTarget r = new FileObjectTarget(replica)) {
            Repository repo =
                    Repository.openOrInit(t, RepositoryConfig.defaults(), Passphrase.of(SECRET, "test"), 1000);
            int chunkSize = repo.config().chunkSize();
            DiskIndexBuilder index = repo.newIndex(2L * chunkSize, Optional.empty());
            byte[] bytes = new byte[chunkSize];
            new Random(5).nextBytes(bytes);
            var stored = repo.putChunk(bytes, chunkSize);
            index.set(0, stored.digest());
            chunk = ObjectKeys.chunk(stored.digest());
            Instant at = Instant.parse("2026-12-01T00:00:00Z");
            Manifest m = new Manifest(
                    1,
                    RestorePointIds.next(at, new Random(1)),
                    "web-1",
                    "hv1",
                    "j1",
                    at,
                    at,
                    ConsistencyAchieved.CRASH,
                    Trigger.manual(),
                    "web",
                    Optional.empty(),
                    List.of(new DiskEntry(
                            "sda",
                            2L * chunkSize,
                            chunkSize,
                            index.finish().hex(),
                            "tm",
                            Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                            0,
                            0)));
            repo.commit(m);
            // a byte-identical copy, as replication makes
            try (Stream<Path> files = Files.walk(data.resolve("repo"))) {
                for (Path f : files.filter(Files::isRegularFile).toList()) {
                    Path to = replica.resolve(data.resolve("repo").relativize(f).toString());
                    Files.createDirectories(to.getParent());
                    Files.copy(f, to);
                }
            }
            assertThat(r.exists(ObjectKeys.CONFIG)).isTrue();
        }
    }

    @AfterEach
    void restoreEnvironment() {
        PassphraseOptions.env = System.getenv();
    }

    private int run(Way way, String... command) throws Exception {
        List<String> args = new ArrayList<>(List.of(command));
        args.addAll(way.args(this));
        std.reset();
        return Main.execute(args.toArray(String[]::new));
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void verifyAndDeepVerifyReadTheEncryptedRepository(Way way) throws Exception {
        assertThat(run(way, "verify", "--target", "local")).as(std.err()).isZero();
        assertThat(std.out()).contains("1 restore points").contains("no problems found");
        assertThat(run(way, "verify", "--target", "local", "--deep"))
                .as(std.err())
                .isZero();
        assertThat(std.out()).contains("1 chunks").contains("no problems found");
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void verifyRepairsAnEncryptedChunkFromTheReplica(Way way) throws Exception {
        Path damaged = data.resolve("repo").resolve(chunk);
        byte[] bytes = Files.readAllBytes(damaged);
        bytes[bytes.length / 2] ^= 1;
        Files.write(damaged, bytes);
        assertThat(run(way, "verify", "--target", "local", "--deep", "--repair-from", replica.toString()))
                .as(std.err())
                .isZero();
        assertThat(std.out()).contains("CORRUPT      " + chunk).contains("1 problems, 1 repaired, 0 remain");
        assertThat(run(way, "verify", "--target", "local", "--deep"))
                .as(std.err())
                .isZero();
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void gcAndPruneWithGcCollectTheEncryptedRepository(Way way) throws Exception {
        assertThat(run(way, "gc", "--target", "local")).as(std.err()).isZero();
        assertThat(std.out()).contains("1 restore points marked").contains("0 unreferenced objects recorded");

        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("web.yaml"),
                "name: web\nvms: {names: [web-1]}\nschedule: {interval: 10m}\nrpo: 1h\n"
                        + "retention:\n  local: {last: 1}\n");
        assertThat(run(way, "prune", "--policies", policies.toString(), "--gc"))
                .as(std.err())
                .isZero();
        assertThat(std.out()).contains("gc of local: 1 restore points marked");
    }

    @Test
    void withoutAnyPassphraseVerifySaysHowToGiveOne() throws Exception {
        PassphraseOptions.env = Map.of();
        std.reset();
        assertThat(Main.execute("verify", "--data", data.toString(), "--target", "local"))
                .isEqualTo(2);
        assertThat(std.err()).contains("is encrypted").contains("--passphrase-file");
    }
}
