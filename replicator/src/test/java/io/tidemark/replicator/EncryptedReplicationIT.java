package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.Passphrase;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.PassphraseSource;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An encrypted primary repository on the file system, replicated by the real {@link Replicator}
 * to S3 (S3Proxy): S3 holds only ciphertext (no object shows a marker written all over the disk),
 * and after the primary is deleted, the passphrase alone restores the disk from S3 bit for bit.
 */
class EncryptedReplicationIT {

    private static final int CHUNK = 64 * 1024;
    private static final int CHUNKS = 128; // 8 MiB
    private static final String VM = "web-1";
    private static final byte[] MARKER = "<<TIDEMARK-SECRET-PLAINTEXT-MARKER>>".getBytes(StandardCharsets.US_ASCII);
    private static final Passphrase PASSPHRASE = Passphrase.of("it-passphrase: correct horse battery", "test");

    @Test
    void s3HoldsOnlyCiphertextAndRestoresBitIdenticalFromThePassphraseAlone(@TempDir Path tmp) throws IOException {
        Path primaryDir = Files.createDirectories(tmp.resolve("primary"));
        Repository primary = Repository.openOrInit(
                new FileObjectTarget(primaryDir),
                new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, 16),
                PASSPHRASE,
                FormatConstants.MIN_KDF_ITERATIONS);
        byte[] disk = image();
        Manifest full = backup(primary, disk, Optional.empty(), 0);
        // an incremental: 10 chunks rewritten, with the marker again
        for (int c = 40; c < 50; c++) {
            fillWithMarker(disk, c, c * 7);
        }
        Manifest incremental = backup(primary, disk, Optional.of(full), 1);
        String expectedSha = HexFormat.of().formatHex(Digest.sha256(disk).bytes());

        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("enc");
            var config = S3Targets.config(s3.endpoint(), s3, "enc", "tm");
            try (S3ObjectTarget offsite = config.open();
                    Replicator replicator = new Replicator(
                            primary, Map.of("offsite", offsite), new RecordingEventBus(), Clock.systemUTC(), 4)) {
                assertThat(replicator.replicate(VM, full.id(), "offsite").objectsSent())
                        .isPositive();
                assertThat(replicator.replicate(VM, incremental.id(), "offsite").objectsSent())
                        .isPositive();
                // what reached S3 is what the primary stores: ciphertext, byte for byte, and no marker
                List<String> keys = offsite.list("");
                assertThat(keys).anyMatch(k -> k.startsWith(ObjectKeys.KEYS)).contains(ObjectKeys.CONFIG);
                assertThat(keys.stream().filter(k -> k.startsWith(ObjectKeys.CHUNKS)))
                        .hasSizeGreaterThan(50);
                for (String key : keys) {
                    byte[] onS3 = offsite.get(key).orElseThrow();
                    assertThat(indexOf(onS3, MARKER)).as(key).isEqualTo(-1);
                    assertThat(indexOf(onS3, VM.getBytes(StandardCharsets.US_ASCII)))
                            .as(key)
                            .isEqualTo(-1);
                    assertThat(onS3).as(key).isEqualTo(Files.readAllBytes(primaryDir.resolve(key)));
                }
            }

            // disaster: the primary is gone
            FileTrees.delete(primaryDir);
            assertThat(primaryDir).doesNotExist();

            try (S3ObjectTarget fromS3 = config.open()) {
                assertThatThrownBy(() -> Repository.open(fromS3))
                        .isInstanceOf(PermanentException.class)
                        .hasMessageContaining("is encrypted");
                assertThatThrownBy(() -> Repository.open(fromS3, PassphraseSource.of(Passphrase.of("guess", "test"))))
                        .hasMessageStartingWith("wrong passphrase for repository " + fromS3.describe());
                Repository repo = Repository.open(fromS3, PassphraseSource.of(PASSPHRASE));
                Manifest latest = repo.latest(VM).orElseThrow();
                assertThat(latest.id()).isEqualTo(incremental.id());
                Restorer.Result r = new Restorer(repo, 4)
                        .restoreDisk(latest, "sda", tmp.resolve("restored.raw"), Restorer.Progress.NONE);
                assertThat(r.sha256()).isEqualTo(expectedSha);
                Restorer.Result first = new Restorer(repo, 4)
                        .restoreDisk(
                                repo.manifests(VM).get(0), "sda", tmp.resolve("first.raw"), Restorer.Progress.NONE);
                assertThat(first.sizeBytes()).isEqualTo((long) CHUNKS * CHUNK);
            }
        }
    }

    /** Markers in a third of the chunks, random data in a third, zeros in the rest. */
    private static byte[] image() {
        byte[] img = new byte[CHUNKS * CHUNK];
        Random random = new Random(11);
        for (int c = 0; c < CHUNKS; c++) {
            switch (c % 3) {
                case 0 -> fillWithMarker(img, c, c);
                case 1 -> {
                    byte[] r = new byte[CHUNK];
                    random.nextBytes(r);
                    System.arraycopy(r, 0, img, c * CHUNK, CHUNK);
                }
                default -> {} // zeros
            }
        }
        return img;
    }

    private static void fillWithMarker(byte[] img, int chunk, int salt) {
        for (int off = chunk * CHUNK; off + MARKER.length + 4 <= (chunk + 1) * CHUNK; off += MARKER.length + 4) {
            System.arraycopy(MARKER, 0, img, off, MARKER.length);
            img[off + MARKER.length] = (byte) salt;
            img[off + MARKER.length + 1] = (byte) (off >>> 8);
        }
    }

    private static Manifest backup(Repository repo, byte[] img, Optional<Manifest> parent, int n) {
        var index = repo.newIndex(img.length, Optional.empty());
        for (int c = 0; c < CHUNKS; c++) {
            index.set(
                    c,
                    repo.putChunk(Arrays.copyOfRange(img, c * CHUNK, (c + 1) * CHUNK), CHUNK)
                            .digest());
        }
        Digest root = index.finish();
        Instant t = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(60L * n);
        Manifest m = new Manifest(
                1,
                "20261124T00000" + n + ".000Z-abcdef",
                VM,
                "hv1",
                "job-" + n,
                t,
                t,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                parent.map(Manifest::id),
                List.of(new DiskEntry("sda", img.length, CHUNK, root.hex(), "cp" + n, Optional.empty(), 0, 0)));
        repo.commit(m);
        return m;
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
